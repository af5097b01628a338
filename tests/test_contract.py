"""The contract between the ingress, the workflows and the activities (package ``contract``).

What crosses Temporal is typed end to end: the ingress starts and signals workflows with
their own methods, and the contract's dataclasses import nothing but the standard
library, so the ingress loads none of the worker's I/O code.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import pkgutil
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType

import pytest

import contract
from contract.accounts import AccountCreationInput
from contract.connection_params import ConnectionParamsInput
from contract.messages import Forwarding
from contract.pairing import PairingInput, PairingRequestReceived
from ingress.routing import Decision, SignalWithStart, StartOnce
from workflows.account_creation import AccountCreation
from workflows.forwarding import ForwardServiceMessage
from workflows.veraid_pairing import VeraidContactPairing

ROOT = Path(__file__).resolve().parents[1]
# What the worker's adapters use, and the worker's configuration: never the ingress's.
IO_MODULES = ["httpx", "aiohttp", "dns.asyncquery", "google.cloud.pubsub_v1", "config"]


def _modules_loaded_by(statement: str) -> list[str]:
    """The modules a fresh interpreter loads for ``statement``, beyond its own start-up."""
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_routing_loads_no_io_library() -> None:
    loaded = _modules_loaded_by("import ingress.routing")

    assert [name for name in IO_MODULES if name in loaded] == []
    # Through the workflows it hands messages to, and the activity classes they call.
    assert {"workflows.pairing", "activities.connection_params", "activities.egress"} <= set(loaded)


def _contract_modules() -> list[ModuleType]:
    return [
        import_module(f"contract.{info.name}") for info in pkgutil.iter_modules(contract.__path__)
    ]


def test_contract_imports_only_the_standard_library() -> None:
    names = ", ".join(module.__name__ for module in _contract_modules())
    loaded = _modules_loaded_by(f"import {names}")

    outside = {name.split(".")[0] for name in loaded} - set(sys.stdlib_module_names)
    assert outside == {"contract"}


@pytest.mark.parametrize("module", _contract_modules(), ids=lambda module: module.__name__)
def test_contract_annotations_are_evaluated_once(module: ModuleType) -> None:
    """No postponed annotations: the JSON converter would evaluate them on every conversion."""
    classes = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if dataclasses.is_dataclass(cls)
    ]
    assert classes
    for cls in classes:
        annotations = inspect.get_annotations(cls)
        assert not [hint for hint in annotations.values() if isinstance(hint, str)], cls


def _mismatches_mypy_must_reject() -> list[Decision]:
    """Never run: mypy checks it, and reports an unused ``type: ignore`` (strict mode) if
    any of these decisions stopped being an error, that is, if the contract went untyped.
    """
    request = PairingRequestReceived("parcel", "0server", "0peer", "a@x.example", "b@x.example", "")
    return [
        # A workflow started with another workflow's input.
        StartOnce(  # type: ignore[misc]
            workflow=ForwardServiceMessage.run,
            workflow_id="forward:0peer:parcel",
            start_input=ConnectionParamsInput("parcel", "0server", "0peer", "x", "x", 1.0),
        ),
        # A pair workflow started with an account workflow's input.
        SignalWithStart(  # type: ignore[misc]
            workflow=VeraidContactPairing.run,
            workflow_id="veraid-pairing:a@x.example:b@x.example",
            start_input=AccountCreationInput(),
            signal=VeraidContactPairing.pairing_request,
            signal_input=request,
        ),
        # A signal with another signal's input.
        SignalWithStart(
            workflow=VeraidContactPairing.run,
            workflow_id="veraid-pairing:a@x.example:b@x.example",
            start_input=PairingInput(veraid_ids=[], request_ttl_seconds=1),
            signal=VeraidContactPairing.pairing_request,  # type: ignore[arg-type]
            signal_input=Forwarding("0server", "0peer", "text/plain", ""),
        ),
        # A signal method of another workflow.
        SignalWithStart(
            workflow=VeraidContactPairing.run,
            workflow_id="veraid-pairing:a@x.example:b@x.example",
            start_input=PairingInput(veraid_ids=[], request_ttl_seconds=1),
            signal=AccountCreation.account_request,  # type: ignore[arg-type]
            signal_input=request,
        ),
    ]
