"""Several teachers behind one backend: each request goes to the teacher it names.

``distill`` and ``reason`` may ask several models the same rows (UltraFeedback's recipe:
answers of different models to one prompt make the most informative preference pairs).
The stage keeps one backend and one request queue; each request's ``teacher`` index
picks the model, and every answer comes back with that model's name, so each record
says who wrote it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from selfinstruct.llm.base import Backend, Completion, Request, preflight


class TeacherPool:
    """The teachers' backends, in order; ``request.teacher`` is an index into them."""

    def __init__(self, teachers: Sequence[tuple[str, Backend]]) -> None:
        if len(teachers) < 2:
            raise ValueError("a teacher pool needs two teachers or more")
        self.teachers = list(teachers)
        self.name = " + ".join(model for model, _ in self.teachers)

    async def complete(self, request: Request) -> Completion:
        """The answer of the teacher ``request`` names, labelled with the model name it was
        given (two servers may both call theirs ``default``)."""
        model, backend = self.teachers[request.teacher % len(self.teachers)]
        return dataclasses.replace(await backend.complete(request), model=model)

    async def check(self) -> None:
        """Check every teacher's server before the first request."""
        for _, backend in self.teachers:
            await preflight(backend)

    async def aclose(self) -> None:
        """Release every teacher's backend."""
        await asyncio.gather(*(backend.aclose() for _, backend in self.teachers))


def teacher_of(request: Request, backend: Backend, sample: int) -> Request:
    """``request`` for its ``sample``: sample k goes to teacher k mod n of a pool of n
    (one model: unchanged), so K samples of a row are spread evenly over the teachers."""
    if not isinstance(backend, TeacherPool):
        return request
    return dataclasses.replace(request, teacher=sample % len(backend.teachers))
