"""Playground (leads): pick a finished adapter and try it next to its base. Classification shows
the label probabilities of the base (its linear probe) and of the adapter; generation chats with
both side by side."""

import pandas as pd
import streamlit as st

from curation.models import Role
from training import jobs
from ui.page import open_project_page
from ui.training import probability_chart, run_label, warnings_view

user, engine, project = open_project_page("Playground", Role.lead, Role.admin)
key = f"playground.{project.id}"
finished = [r for r in jobs.list_runs(engine, project.id) if str(r.status) == "succeeded" and r.output_dir]
if not finished:
    st.info("No finished adapter yet. Train one on the Train page.")
    st.stop()
by_id = {r.id: r for r in finished}
chosen = st.selectbox("Adapter", list(by_id), format_func=lambda i: run_label(by_id[i]), key=f"{key}.run")
run = by_id[chosen]
warnings_view(run)


@st.cache_resource(show_spinner="Loading the base model and the adapter…", max_entries=2)
def _load(output_dir: str):  # noqa: ANN202
    from training.models import load_adapter

    return load_adapter(output_dir)


model, tokenizer, meta = _load(run.output_dir)

if meta["task_type"] == "classification":
    import torch

    text = st.text_area("Text to classify", key=f"{key}.text")
    if st.button("Predict", type="primary", key=f"{key}.predict") and text.strip():
        encoded = tokenizer([text], truncation=True, max_length=int(run.config.get("max_length", 128)),
                            return_tensors="pt")
        with torch.no_grad():
            adapter = torch.softmax(model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
                                    .logits.float(), -1)[0]
            with model.disable_adapter():
                base = torch.softmax(model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
                                     .logits.float(), -1)[0]
        labels = meta["labels"]
        table = pd.DataFrame({"label": labels, "adapter": adapter.numpy(), "base (linear probe)": base.numpy()})
        table = table.sort_values("adapter", ascending=False)
        best = labels[int(adapter.argmax())]
        st.metric("Adapter's prediction", best, help=f"probability {float(adapter.max()):.3f}")
        st.dataframe(table, hide_index=True)
        st.plotly_chart(probability_chart(table.head(10)), key=f"{key}.chart")
else:
    from training.evaluate import generate

    history_key = f"{key}.chat.{run.id}"
    history = st.session_state.setdefault(history_key, [])
    max_new = st.slider("Max new tokens", 16, 512, 128, key=f"{key}.max_new")
    left, right = st.columns(2)
    left.subheader("Base")
    right.subheader("Adapter")
    for turn in history:
        for column, side in ((left, "base"), (right, "adapter")):
            with column.chat_message("user"):
                st.text(turn["user"])
            with column.chat_message("assistant"):
                st.text(turn[side])
    prompt = st.chat_input("Message both models")
    if prompt:
        def conversation(side: str) -> list[dict[str, str]]:
            messages = []
            for turn in history:
                messages += [{"role": "user", "content": turn["user"]}, {"role": "assistant", "content": turn[side]}]
            return messages + [{"role": "user", "content": prompt}]

        with st.spinner("Generating…"):
            with model.disable_adapter():
                base_reply = generate(model, tokenizer, conversation("base"), max_new)
            adapter_reply = generate(model, tokenizer, conversation("adapter"), max_new)
        history.append({"user": prompt, "base": base_reply, "adapter": adapter_reply})
        st.rerun()
    if history and st.button("Clear the chat", key=f"{key}.clear"):
        st.session_state[history_key] = []
        st.rerun()
