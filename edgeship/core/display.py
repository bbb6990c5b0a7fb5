"""The terminal display of ``edgeship.core.progress``: one ``rich`` progress line per stage.

A running stage shows a spinner, a bar (epochs when it trains, a pulse
otherwise), its elapsed time and its latest status; a finished one keeps its
line with a check mark (or a cross) and its result. Imported only when stderr
is a terminal; ``rich`` comes with the build extra.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text


class _MarkColumn(SpinnerColumn):
    """A spinner while the stage runs, then its mark: a check or a cross."""

    def render(self, task: Task) -> Text:
        mark = task.fields.get("mark")
        return Text(mark, style="green" if mark == "✓" else "red") if mark else super().render(task)


class StageDisplay:
    """One live ``rich.progress.Progress`` for the outermost stage and the stages inside it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        console = Console(file=stream, highlight=False)
        self._progress = Progress(
            _MarkColumn(),
            TextColumn("{task.description}", table_column=Column(width=30, no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=16),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}", markup=False,
                       table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            console=console, redirect_stdout=False, redirect_stderr=True, refresh_per_second=8, expand=True,
        )
        self._progress.start()

    def add(self, stage: Any) -> None:
        stage.task = self._progress.add_task(stage.name, total=None, status="", mark="")

    def update(self, stage: Any, *, status: str, completed: int | None = None, total: int | None = None) -> None:
        if stage.task is None:
            return
        fields: dict[str, Any] = {"status": status}
        if completed is not None:
            fields.update(completed=completed, total=total)
        self._progress.update(stage.task, **fields)

    def finish(self, stage: Any, ok: bool, result: str) -> None:
        if stage.task is None:
            return
        task = self._progress.tasks[stage.task]
        total = task.total or 1
        self._progress.update(stage.task, total=total, completed=total if ok else task.completed,
                              status=result if ok else "failed", mark="✓" if ok else "✗")
        self._progress.stop_task(stage.task)

    def close(self) -> None:
        self._progress.stop()
        self._stream.flush()
        if self._stream is not sys.stderr and self._stream is not sys.__stderr__:
            self._stream.close()  # the private copy of the terminal's stderr
