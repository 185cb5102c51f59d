"""The studio's HTTP API as a client sees it: endpoints discovered by name, called with the parameters they declare.

Benchmarks fill only the inputs they care about (`Endpoint.arguments({"image": ..., "mode": "full"})`): a wanted
key matches a parameter whose name or label contains it, and every other parameter keeps its declared default or
gets a neutral value for its component, so the calls survive parameters being renamed or added. Public endpoints
come from `Client.view_api()`; an endpoint the studio keeps out of its API page (`api_visibility="private"`) is
still callable by its name over Gradio's HTTP route (`/gradio_api/call/<name>`), found in the app's config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reason_iad.errors import UserError

NEUTRAL = {"Textbox": "", "Checkbox": False, "CheckboxGroup": [], "Image": None, "File": None, "Number": None}


@dataclass(frozen=True)
class Parameter:
    """One input of an endpoint: its keyword (None for a hidden endpoint), label, component and default."""

    name: str | None
    label: str
    component: str
    has_default: bool = False
    default: Any = None

    def matches(self, key: str, exact: bool = False) -> bool:
        """Whether a wanted key names this parameter: its keyword or label is the key (`exact`) or contains it."""
        key = key.lower().replace("_", " ")
        names = ((self.name or "").lower().replace("_", " "), self.label.lower())
        return key in names if exact else any(key in name for name in names)


@dataclass(frozen=True)
class Endpoint:
    """A studio endpoint: its API name, its inputs in order, and whether the API page lists it."""

    api_name: str
    parameters: tuple[Parameter, ...]
    public: bool = True

    def arguments(self, wanted: dict[str, Any]) -> list[Any]:
        """Values for every parameter in order: the wanted ones by key, defaults or neutral values elsewhere.

        A key fills the first free parameter named or labelled exactly so, else the first whose keyword or label
        contains it.

        Raises:
            UserError: A wanted key that matches no parameter (the studio changed beyond recognition).
        """
        values: dict[int, Any] = {}
        for key, value in wanted.items():
            free = [i for i in range(len(self.parameters)) if i not in values]
            exact = [i for i in free if self.parameters[i].matches(key, exact=True)]
            index = (exact or [i for i in free if self.parameters[i].matches(key)] or [None])[0]
            if index is None:
                labels = [p.name or p.label for p in self.parameters]
                raise UserError(f"{self.api_name} has no parameter matching {key!r}; it takes {labels}")
            values[index] = value
        return [values[i] if i in values else _fallback(p) for i, p in enumerate(self.parameters)]

    def keywords(self, wanted: dict[str, Any]) -> dict[str, Any]:
        """`arguments` as keyword arguments for `Client.submit` (public endpoints only)."""
        return {p.name: v for p, v in zip(self.parameters, self.arguments(wanted), strict=True)}


def _fallback(parameter: Parameter) -> Any:
    if parameter.has_default:
        return parameter.default
    return NEUTRAL.get(parameter.component)


def public_endpoints(client) -> dict[str, Endpoint]:
    """{"/name": Endpoint} of the endpoints listed by `client.view_api(return_format="dict")`."""
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    return {
        name: Endpoint(
            name,
            tuple(
                Parameter(
                    p["parameter_name"],
                    p.get("label") or "",
                    p["component"],
                    p.get("parameter_has_default", False),
                    p.get("parameter_default"),
                )
                for p in info["parameters"]
            ),
        )
        for name, info in named.items()
    }


def hidden_endpoints(config: dict) -> dict[str, Endpoint]:
    """{"/name": Endpoint} of the endpoints kept off the API page, from the app's config (inputs without keywords)."""
    components = {c["id"]: c for c in config.get("components", [])}
    found = {}
    for dependency in config.get("dependencies", []):
        name = dependency.get("api_name")
        if not name or dependency.get("api_visibility") != "private":
            continue
        inputs = [components[i] for i in dependency.get("inputs", []) if i in components]
        parameters = tuple(
            Parameter(None, str(c.get("props", {}).get("label") or ""), _component_name(c))
            for c in inputs
            if c.get("type") != "state"
        )
        found[f"/{name}"] = Endpoint(f"/{name}", parameters, public=False)
    return found


def _component_name(component: dict) -> str:
    kind = str(component.get("type", ""))
    return {"checkboxgroup": "CheckboxGroup"}.get(kind, kind[:1].upper() + kind[1:])


def find_endpoint(endpoints: dict[str, Endpoint], *words: str) -> Endpoint | None:
    """The public endpoint whose name holds every word, else such a hidden one, else None (shortest name first)."""
    matching = [e for e in endpoints.values() if all(w in e.api_name for w in words)]
    matching.sort(key=lambda e: (not e.public, len(e.api_name)))
    return matching[0] if matching else None


class HiddenCaller:
    """Calls endpoints that are off the API page over Gradio's HTTP route, as a browser session would."""

    def __init__(self, url: str, timeout: float = 300.0) -> None:
        import httpx

        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def upload(self, path: str | Path) -> dict:
        """Upload a file; returns the file payload an image or file input takes."""
        path = Path(path)
        response = self.http.post("/gradio_api/upload", files={"files": (path.name, path.read_bytes())})
        response.raise_for_status()
        return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def start(self, endpoint: Endpoint, values: list[Any]):
        """Queue a call (`httpx.Response`: 200 with its event id, 503 when the queue is full)."""
        return self.http.post(f"/gradio_api/call{endpoint.api_name}", json={"data": values})

    def call(self, endpoint: Endpoint, values: list[Any]) -> list[Any]:
        """Run the endpoint to completion and return its outputs.

        Raises:
            RuntimeError: The queue refused the call or the endpoint reported an error (its message).
        """
        started = self.start(endpoint, values)
        if started.status_code == 503:
            raise RuntimeError(f"{endpoint.api_name}: the queue is full ({started.text})")
        started.raise_for_status()
        event, payload = "", None
        with self.http.stream("GET", f"/gradio_api/call{endpoint.api_name}/{started.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event in ("complete", "error"):
                    payload = json.loads(line.removeprefix("data: "))
                    break
        if event != "complete":
            raise RuntimeError(f"{endpoint.api_name} failed: {payload}")
        return payload

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()
