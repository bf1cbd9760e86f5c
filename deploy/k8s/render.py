#!/usr/bin/env python3
"""Render a kustomization of deploy/k8s to YAML without the kustomize binary.

    python deploy/k8s/render.py deploy/k8s/overlays/cpu > office.yaml

The tests and `make check-deploy` use this, because a clean CI machine has PyYAML but maybe no
kubectl. It implements exactly the Kustomize features these manifests use, and refuses any other
field rather than render something `kubectl apply -k` would not: `resources` (files and
directories), `namespace`, `images` (newName, newTag, digest) and `patches` given as JSON 6902
operations with a kind/name target. Where kubectl is installed, the tests check both agree.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                  "CustomResourceDefinition", "PriorityClass", "IngressClass"}


class RenderError(ValueError):
    pass


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise RenderError(f"JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _json6902(doc: dict, operations: list[dict]) -> dict:
    doc = copy.deepcopy(doc)
    for operation in operations:
        op, parts = operation["op"], _pointer(operation["path"])
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op in ("add", "replace"):
            value = copy.deepcopy(operation["value"])
            if isinstance(parent, list):
                if last == "-":
                    parent.append(value)
                elif op == "add":
                    parent.insert(int(last), value)
                else:
                    parent[int(last)] = value
            else:
                if op == "replace" and last not in parent:
                    raise RenderError(f"replace of missing {operation['path']}")
                parent[last] = value
        elif op == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise RenderError(f"unsupported patch op {op!r}")
    return doc


def _set_image(doc: dict, images: list[dict]) -> None:
    pod_spec = (doc.get("spec") or {}).get("template", {}).get("spec")
    if pod_spec is None:
        return
    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        name = container["image"].split("@")[0].split(":")[0]
        for image in images:
            if image["name"] == name:
                new = image.get("newName", name)
                if "digest" in image:
                    new += "@" + image["digest"]
                elif "newTag" in image:
                    new += ":" + str(image["newTag"])
                container["image"] = new


def render(directory: Path) -> list[dict]:
    directory = Path(directory)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise RenderError(f"{directory}: kustomization fields this renderer does not implement: {sorted(unknown)}")
    docs: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            docs += render(path)
        else:
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch in kustomization.get("patches", []):
        if set(patch) - {"path", "target"} or set(patch["target"]) - {"kind", "name"}:
            raise RenderError(f"{directory}: only path + target(kind, name) patches are implemented")
        operations = yaml.safe_load((directory / patch["path"]).read_text())
        if not isinstance(operations, list):
            raise RenderError(f"{patch['path']}: only JSON 6902 patches (a list of operations) are implemented")
        target, matched = patch["target"], 0
        for i, doc in enumerate(docs):
            if doc["kind"] == target["kind"] and doc["metadata"]["name"] == target["name"]:
                docs[i], matched = _json6902(doc, operations), matched + 1
        if matched != 1:
            raise RenderError(f"patch {patch['path']} matched {matched} resources")
    if "namespace" in kustomization:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = kustomization["namespace"]
    for doc in docs:
        _set_image(doc, kustomization.get("images", []))
    return docs


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump_all(render(Path(argv[1])), sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
