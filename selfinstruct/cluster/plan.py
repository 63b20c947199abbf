"""How a stage's requests in flight are spread over a pool of actors.

Against OpenAI-compatible servers, ``--concurrency`` C is what the servers carry: each
of A actors keeps C / A requests in flight. With ``--backend vllm`` each actor holds one
engine, and C keeps its meaning of one engine's round: every actor keeps C in flight.
A batch (one block of the dataset, so its answers stream back as soon as it is done) is
half an actor's share, and an actor takes four batches at once: twice its share is
waiting, so a batch held up by its slowest answer never leaves the actor idle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from selfinstruct.errors import UserError

#: CPUs an HTTP actor reserves: it waits on sockets, and a client spends ~2 ms of CPU
#: per request, so a quarter of a core carries ~125 requests/s.
HTTP_ACTOR_CPUS = 0.25
#: Requests in flight one HTTP actor carries by default before another is added.
HTTP_ACTOR_SHARE = 128
#: Batches an actor works on at once.
CALLS_PER_ACTOR = 4
#: The largest batch: bigger ones only delay the first answers.
MAX_BATCH = 256


@dataclass(frozen=True)
class ActorPlan:
    """The actor pool of one stage."""

    actors: int
    #: Requests in flight per actor.
    slots: int
    batch_size: int
    calls_per_actor: int
    num_cpus: float
    num_gpus: float

    def describe(self) -> str:
        """One line for the user: what runs where."""
        gpus = f", {self.num_gpus:g} GPU each" if self.num_gpus else ""
        return (f"{self.actors} Ray actor{'s' if self.actors != 1 else ''} "
                f"({self.slots} requests in flight each{gpus})")


def plan_actors(kind: str, concurrency: int, actors: int | None, *, cluster_cpus: float,
                cluster_gpus: float, gpus_per_engine: int = 1) -> ActorPlan:
    """The pool for ``kind`` (openai or vllm) on a cluster with these resources; an
    error when it cannot be placed there."""
    if actors is not None and actors < 1:
        raise UserError("--ray-actors must be at least 1")
    check_kind(kind)
    if kind == "vllm":
        return _engine_plan(concurrency, actors, cluster_gpus, gpus_per_engine)
    room = max(1, math.floor(cluster_cpus / HTTP_ACTOR_CPUS))
    count = actors or min(room, max(1, math.ceil(concurrency / HTTP_ACTOR_SHARE)))
    if count > room:
        raise UserError(f"--ray-actors {count}: the Ray cluster has {cluster_cpus:g} CPUs, "
                        f"room for {room} actors of {HTTP_ACTOR_CPUS:g} CPU")
    count = min(count, concurrency)
    slots = math.ceil(concurrency / count)
    return ActorPlan(count, slots, _batch(slots), CALLS_PER_ACTOR, HTTP_ACTOR_CPUS, 0.0)


def check_kind(kind: str) -> None:
    """Only backends that scale out run on actors: servers, or an engine per GPU."""
    if kind not in ("openai", "vllm"):
        raise UserError("--executor ray sends to OpenAI-compatible servers (--base-url) or "
                        "to a vLLM engine per GPU (--backend vllm); the embedded model runs "
                        "in this process, without --executor ray")


def _engine_plan(concurrency: int, actors: int | None, cluster_gpus: float,
                 gpus_per_engine: int) -> ActorPlan:
    room = math.floor(cluster_gpus / gpus_per_engine)
    if room < 1:
        raise UserError(f"--backend vllm on Ray needs {gpus_per_engine} GPU per actor "
                        f"(--tensor-parallel-size); the Ray cluster has {cluster_gpus:g}")
    count = actors or room
    if count > room:
        raise UserError(f"--ray-actors {count}: the Ray cluster has {cluster_gpus:g} GPUs, "
                        f"room for {room} engines of {gpus_per_engine} GPU")
    return ActorPlan(count, concurrency, _batch(concurrency), CALLS_PER_ACTOR, 1.0,
                     float(gpus_per_engine))


def _batch(slots: int) -> int:
    return max(1, min(MAX_BATCH, math.ceil(slots / 2)))
