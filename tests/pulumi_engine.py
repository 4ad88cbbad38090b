"""Run a Pulumi program under `pulumi.runtime.set_mocks` with the real provider SDK classes, and
record the inputs the engine receives for each resource.

Pulumi's mock monitor records stack transforms but does not run them (the engine does that, and
there is none here). `Engine` does what the engine does with them: before registering a resource
it calls every registered transform on the main event loop with the resource's inputs, then
serializes the result as the callback server would. Older stack transformations run inside the
SDK, mocks or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.settings import set_root_resource


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    import_id: str


@dataclass
class Engine(pulumi.runtime.Mocks):
    """Mocks that run stack transforms like the engine; ids are derived from names."""

    resources: dict[str, Registered] = field(default_factory=dict)
    transforms: list[pulumi.ResourceTransform] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None

    def register_transform(self, transform: pulumi.ResourceTransform) -> None:
        self.loop = asyncio.get_running_loop()
        self.transforms.append(transform)

    async def _transformed(self, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
        inputs = dict(args.inputs)
        for transform in self.transforms:
            result = transform(
                pulumi.ResourceTransformArgs(
                    args.custom, args.typ, args.name, inputs, pulumi.ResourceOptions()
                )
            )
            if asyncio.iscoroutine(result):
                result = await result
            if result is not None:
                serialized = await rpc.serialize_properties(dict(result.props), {})
                inputs = rpc.deserialize_properties(serialized)
        return inputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        if self.transforms and self.loop is not None:
            future = asyncio.run_coroutine_threadsafe(self._transformed(args), self.loop)
            inputs = future.result(timeout=60)
        resource_id = args.resource_id or f"{args.name}-id"
        self.resources[args.name] = Registered(args.typ, args.name, inputs, args.resource_id)
        return resource_id, inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


def run(program: Callable[[], None], preview: bool = False) -> dict[str, Registered]:
    """Run `program` as the body of a fresh stack; the inputs of every resource it declared."""
    set_root_resource(None)  # type: ignore[arg-type]
    engine = Engine()
    pulumi.runtime.set_mocks(engine, project="remediate-test", stack="test", preview=preview)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def body() -> None:
        program()

    body()
    return engine.resources
