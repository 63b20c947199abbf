"""``--executor ray`` as a stage sees it: an executor in its settings, a model name.

:func:`ray_stage` is what the pipeline calls instead of building a backend: this
process gets :class:`RemoteModel` (the name the records carry, nothing loaded), and
the stage's settings get a :class:`RayExecutor`, whose senders run the requests on
Ray Data actors that each build the real backend from its :class:`BackendSpec`.
The API key travels to the actors as a constructor argument, held in Ray's memory
only: it is never part of a runtime environment, a log line or a file.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from selfinstruct.cluster.plan import ActorPlan, check_kind, plan_actors
from selfinstruct.cluster.runner import RayRunner
from selfinstruct.cluster.session import check_address
from selfinstruct.cluster.wire import encode_request
from selfinstruct.cluster.worker import BackendWorker
from selfinstruct.llm import Backend, BackendSpec, given_backend
from selfinstruct.llm.base import BackendError, Completion, Request
from selfinstruct.llm.registry import BackendFactory

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

J = TypeVar("J")
#: A stage's settings: any dataclass with an ``executor`` field. The cluster is an
#: executor below the stages, so it does not import their settings class.
Settings = TypeVar("Settings", bound="DataclassInstance")


@dataclass(frozen=True)
class RayOptions:
    """``--ray-address`` and ``--ray-actors`` (None: Ray's default address; actors by
    the plan)."""

    address: str | None = None
    actors: int | None = None


class RemoteModel:
    """This process's stand-in for a backend that lives in the actors: its name goes
    into the records; it sends nothing itself."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def complete(self, request: Request) -> Completion:
        """Never called: the executor sends from the actors."""
        raise BackendError(f"{self.name} answers from Ray actors, not from this process",
                           retryable=False)

    async def aclose(self) -> None:
        """Nothing here to release; the actors end with their dataset."""


class RayExecutor:
    """Makes each stage's sender: a :class:`RayRunner` over an actor pool."""

    def __init__(self, spec: BackendSpec, api_key: str | None,
                 options: RayOptions | None = None, factory: BackendFactory | None = None) -> None:
        self.spec = spec
        self.options = options or RayOptions()
        self.factory = factory
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"RayExecutor({self.spec.kind}:{self.spec.model}, {self.options})"

    def sender(
        self,
        backend: Backend,
        *,
        concurrency: int,
        max_consecutive_failures: int,
        on_failure: Callable[[J, BackendError], None],
    ) -> RayRunner[J]:
        """A runner that sends from Ray actors."""
        return RayRunner(self, backend.name, concurrency=concurrency,
                         max_consecutive_failures=max_consecutive_failures,
                         on_failure=on_failure)

    def plan(self, ray: Any, concurrency: int) -> ActorPlan:
        """The actor pool for this cluster's resources."""
        resources = ray.cluster_resources()
        return plan_actors(self.spec.kind, concurrency, self.options.actors,
                           cluster_cpus=float(resources.get("CPU", 0.0)),
                           cluster_gpus=float(resources.get("GPU", 0.0)),
                           gpus_per_engine=self.spec.engine.tensor_parallel_size)

    def blocks(self, ray: Any, plan: ActorPlan, requests: Sequence[Request]) -> Iterator[Any]:
        """The outcomes of ``requests``, a block per batch, in the order they finish.

        One block per batch, so each batch's answers come back as soon as it is done
        rather than with the rest of a larger block.
        """
        rows = [{"key": key, "request": encode_request(request)}
                for key, request in enumerate(requests)]
        count = max(1, math.ceil(len(rows) / plan.batch_size))
        dataset = ray.data.from_items(rows, override_num_blocks=count)
        resources: dict[str, Any] = {"num_cpus": plan.num_cpus}
        if plan.num_gpus:
            resources["num_gpus"] = plan.num_gpus
        answered = dataset.map_batches(
            BackendWorker,
            fn_constructor_kwargs={"spec": self.spec, "api_key": self._api_key,
                                   "slots": plan.slots, "factory": self.factory},
            # The blocks' size (they differ by one row at most): a block is a batch.
            batch_size=max(1, math.ceil(len(rows) / count)),
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(
                size=plan.actors, max_concurrent_calls_per_actor=plan.calls_per_actor),
            **resources,
        )
        blocks: Iterator[Any] = answered.iter_batches(batch_size=None, batch_format="numpy")
        return blocks


def ray_stage(spec: BackendSpec, api_key: str | None, options: RayOptions,
              settings: Settings) -> tuple[Backend, Settings]:
    """The stand-in backend and the settings of a stage sent from Ray actors.

    What :func:`~selfinstruct.llm.use_backend` gives (tests, notebooks), a backend or a
    function of the spec, is sent to the actors as it is, so it must be picklable.
    """
    check_kind(spec.kind)
    check_address(options.address)
    given = given_backend()
    factory: BackendFactory | None = None
    name = model_name(spec)
    if isinstance(given, Backend):
        factory, name = functools.partial(_given, given), given.name
    elif given is not None:
        factory = functools.partial(_made_by, given)
    executor = RayExecutor(spec, api_key, options, factory)
    return RemoteModel(name), dataclasses.replace(settings, executor=executor)


def model_name(spec: BackendSpec) -> str:
    """The name the backend of ``spec`` gives itself, without building it."""
    name = f"{spec.kind}:{spec.model}"
    servers = len(spec.base_urls)
    return f"{name} x{servers} servers" if spec.kind == "openai" and servers > 1 else name


def _given(backend: Backend, spec: BackendSpec, api_key: str | None,
           concurrency: int) -> Backend:
    return backend


def _made_by(make: Callable[[BackendSpec], Backend], spec: BackendSpec, api_key: str | None,
             concurrency: int) -> Backend:
    return make(spec)
