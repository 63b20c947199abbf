"""The playground's Gradio page and its API (``/run``, ``/save``).

A thin client of :class:`~selfinstruct.ui.session.Playground`, as the CLI is of the
stages: every button calls one of its methods and shows the result with
:mod:`selfinstruct.ui.view`. A user's mistake (a template naming no column, a row that
does not exist) is shown on the page as one line, never as a traceback; through the API
it is the call's error message.

The server stays on this machine unless asked: it binds 127.0.0.1, a LAN address only
with ``--host``, and never opens Gradio's public share link (that downloads a tunnel
binary and puts the page, and the model behind it, on the internet). Gradio's telemetry
and update check are off, so starting the page reaches nothing outside.
"""

from __future__ import annotations

import os

# Before Gradio is imported: its telemetry and update check read this.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from collections.abc import AsyncIterator
from typing import Any

import gradio as gr
from gradio.events import api

from selfinstruct.errors import UserError
from selfinstruct.text.thinking import split_thinking
from selfinstruct.ui import view
from selfinstruct.ui.picker import HELP
from selfinstruct.ui.session import Playground, RowResult

#: What the page shows above the boxes.
_INTRO = ("Edit the prompts, pick rows, **Run**: each row is sent and read exactly as "
          "`selfinstruct distill` would. **Save** writes the prompts and shows the command "
          "that runs them over every row.")

#: Each value the Run button's handler yields: status, results, compare, earlier results.
RunUpdate = tuple[str, str, Any, dict[str, RowResult]]


def build_page(playground: Playground) -> gr.Blocks:
    """The page: prompts, row picker, Run / Save, results, Compare and Chat tabs; and the
    ``/run`` and ``/save`` endpoints."""
    handlers = Handlers(playground)
    page: gr.Blocks
    with gr.Blocks(title="selfinstruct playground", analytics_enabled=False) as page:
        gr.Markdown(f"### selfinstruct playground · `{playground.settings.source}` · "
                    f"{playground.spec.model or playground.spec.kind}\n{_INTRO}")
        with gr.Row():
            system = gr.Textbox(playground.initial_system, label="System prompt", lines=6,
                                elem_id="system")
            template = gr.Textbox(playground.initial_template, label="User template",
                                  lines=6, elem_id="template")
        with gr.Row():
            rows = gr.Textbox(handlers.first_rows(), label="Rows", info=HELP, scale=3,
                              elem_id="rows")
            seed = gr.Number(0, label="Seed", precision=0, scale=1, elem_id="seed")
            run = gr.Button("Run", variant="primary", scale=1, elem_id="run")
            save = gr.Button("Save", scale=1, elem_id="save")
        status = gr.Markdown(elem_id="status")
        command = gr.Textbox(label="distill command (after Save)", interactive=False,
                             elem_id="command")
        earlier = gr.State({})
        with gr.Tab("Results"):
            results = gr.HTML(elem_id="results")
        with gr.Tab("Compare"):
            compared = gr.HTML(elem_id="compare")
        with gr.Tab("Rows"):
            picked = gr.HTML(elem_id="picked")
        with gr.Tab("Chat"):
            chat = gr.Chatbot(label="Free chat with the system prompt above (one message "
                                    "a request, as distill sends a row)", elem_id="chat")
            message = gr.Textbox(label="Message", elem_id="message")

        prompts = [system, template]
        private: dict[str, Any] = {"api_visibility": "private"}
        run.click(handlers.on_run, [*prompts, rows, seed, earlier],
                  [status, results, compared, earlier], **private)
        save.click(handlers.on_save, prompts, [status, command], **private)
        gr.on([rows.submit, seed.submit, page.load], handlers.on_preview,
              [*prompts, rows, seed], [picked, status], **private)
        message.submit(handlers.on_chat, [system, message, chat], [chat, message], **private)
        api(handlers.api_run, api_name="run")
        api(handlers.api_save, api_name="save")
    return page


class Handlers:
    """What each event of the page does (one instance per page, over one playground)."""

    def __init__(self, playground: Playground) -> None:
        self.playground = playground

    def first_rows(self) -> str:
        """The rows the picker starts with: the first two."""
        job = self.playground.job(self.playground.initial_system,
                                  self.playground.initial_template)
        return ",".join(key for key, _ in job.rows[:2])

    def on_preview(self, system: str, template: str, rows: str, seed: float | None
                ) -> tuple[str, str]:
        """The picked rows' columns (or why none can be picked)."""
        try:
            picked = self.playground.rows(system, template, rows, _seed(seed))
        except UserError as err:
            return "", _problem(err)
        return view.rows_table(picked), f"{len(picked)} rows picked"

    async def on_run(self, system: str, template: str, rows: str, seed: float | None,
                  earlier: dict[str, RowResult]) -> AsyncIterator[RunUpdate]:
        """Send the picked rows; the results show as each answer arrives, then Compare
        puts them beside the rows' previous results."""
        try:
            plan = self.playground.plan(system, template, rows, _seed(seed))
        except UserError as err:
            yield _problem(err), "", gr.skip(), earlier
            return
        order = [key for key, _ in plan.rows]
        done: dict[str, RowResult] = {}
        yield f"sending {len(order)} rows …", "", gr.skip(), earlier
        try:
            async for result in self.playground.answers(plan):
                done[result.id] = result
                shown = [done[key] for key in order if key in done]
                yield (f"{len(done)} of {len(order)} rows answered", view.result_cards(shown),
                       gr.skip(), earlier)
        except UserError as err:
            yield _problem(err), view.result_cards(done.values()), gr.skip(), earlier
            return
        current = [done[key] for key in order]
        yield (_summary(current), view.result_cards(current), view.compare(current, earlier),
               {**earlier, **done})

    def on_save(self, system: str, template: str) -> tuple[str, str]:
        """Write the prompts' next version; show the files and the command."""
        try:
            saved = self.playground.save(system, template)
        except UserError as err:
            return _problem(err), ""
        files = ", ".join(f"`{path}`" for path in (saved.template, saved.system) if path)
        key = ("; distill reads the API key from OPENAI_API_KEY"
               if self.playground.settings.backend.api_key else "")
        return f"saved {files}{key}", saved.command

    async def on_chat(self, system: str, message: str, history: list[dict[str, Any]]
                   ) -> tuple[list[dict[str, Any]], str]:
        """Send one message with the system prompt; the answer joins the conversation."""
        if not message.strip():
            return history, ""
        asked = [*history, {"role": "user", "content": message}]
        try:
            completion = await self.playground.chat(system, message)
        except UserError as err:
            return [*asked, {"role": "assistant", "content": f"⚠ {err}"}], ""
        thought = split_thinking(completion.text, completion.reasoning)
        folded = ([{"role": "assistant", "content": thought.reasoning,
                    "metadata": {"title": "reasoning", "status": "done"}}]
                  if thought.reasoning else [])
        return [*asked, *folded, {"role": "assistant", "content": thought.answer}], ""

    async def api_run(self, system: str, template: str, rows: str) -> list[dict[str, Any]]:
        """Send the rows (ids such as ``row0,row2``, a range ``3..7``, or a number N for N
        at random, seed 0) as distill would; each row's id, prompt, answer, reasoning,
        records and rejections."""
        try:
            plan = self.playground.plan(system, template, rows, 0)
            done = {result.id: result async for result in self.playground.answers(plan)}
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return [done[key].to_json() for key, _ in plan.rows]

    def api_save(self, system: str, template: str) -> str:
        """Save the prompts as the next version; the distill command over all rows."""
        try:
            return self.playground.save(system, template).command
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None


def serve(playground: Playground, host: str = "127.0.0.1", port: int | None = None,
          *, block: bool = True) -> gr.Blocks:
    """Start the page on ``host``:``port`` (a free port from 7860 when None); with
    ``block``, until Ctrl-C. Never a public share link."""
    page = build_page(playground)
    page.queue(default_concurrency_limit=None)
    page.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=True,
                quiet=True, show_error=False, ssr_mode=False, mcp_server=False, pwa=False,
                enable_monitoring=False, footer_links=["api"], css=view.CSS)
    print(f"playground: {page.local_url} (Ctrl-C to stop)", flush=True)
    if block:
        try:
            page.block_thread()
        finally:
            page.close()
    return page


def _seed(value: float | None) -> int:
    return int(value or 0)


def _problem(err: UserError) -> str:
    return f"⚠ {err}"


def _summary(results: list[RowResult]) -> str:
    records = sum(len(result.records) for result in results)
    rejected = sum(1 for result in results if result.rejected and not result.records)
    failed = sum(1 for result in results if result.error is not None)
    return (f"{len(results)} rows answered: {records} records kept, {rejected} answers "
            f"rejected, {failed} requests failed")
