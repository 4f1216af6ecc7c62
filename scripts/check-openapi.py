#!/usr/bin/env python3
"""check-openapi.py — keep docs/openapi.json true to src/api/routes.c.

routes.c is the one table of every HTTP route and who may call it; the
OpenAPI file is the project's published API document. This script fails
(exit 1, one line per difference) when:
  - a route of routes.c has no operation in the OpenAPI file, or the other
    way round;
  - an operation's `x-brigade-roles` differ from the route's roles;
  - the file is not OpenAPI 3.1-shaped enough to be useful (openapi, info,
    paths; each operation has responses, an operationId, path parameters
    that match its path, and security that matches its roles).
On success it prints "openapi: ok (N operations)".

Standard library only, so it runs anywhere python3 does (check-style.sh
calls it). Usage: scripts/check-openapi.py [--routes FILE] [--openapi FILE]
"""
import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# The role macros of src/api/api.h, as the names the OpenAPI file uses.
ROLE_MACROS = {
    "ROLES_SERVER_ADMIN": {"server_admin"},
    "ROLES_TENANT_ADMIN": {"tenant_admin"},
    "ROLES_USER": {"user"},
    "ROLES_ANY": {"server_admin", "tenant_admin", "user"},
}
KNOWN_ROLES = {"server_admin", "tenant_admin", "user", "public"}

# R("METHOD", "/path", roles, work, run) (or R_FLAGS(…, flags)): roles is an expression without
# commas (macros joined by |, or 0), possibly on a continuation line.
ROUTE_RE = re.compile(r'\bR(?:_FLAGS)?\(\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,\s*([^,]+?)\s*,', re.S)


def strip_c_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_roles(expr, where, problems):
    expr = expr.strip()
    if expr == "0":
        return {"public"}
    roles = set()
    for tok in (t.strip() for t in expr.split("|")):
        if tok not in ROLE_MACROS:
            problems.append(f"{where}: unknown roles expression part {tok!r}")
            continue
        roles |= ROLE_MACROS[tok]
    return roles


def parse_routes(path, problems):
    try:
        with open(path, encoding="utf-8") as f:
            text = strip_c_comments(f.read())
    except OSError as e:
        problems.append(f"{path}: cannot read: {e}")
        return {}
    routes = {}
    for m in ROUTE_RE.finditer(text):
        method, pattern, expr = m.group(1), m.group(2), m.group(3)
        key = (method.lower(), pattern)
        where = f"routes.c {method} {pattern}"
        if key in routes:
            problems.append(f"{where}: listed twice")
        routes[key] = parse_roles(expr, where, problems)
    if not routes:
        problems.append(f"{path}: no R(\"METHOD\", \"/path\", ...) rows found")
    return routes


def check_shape(doc, problems):
    """OpenAPI 3.1 essentials; returns {(method, path): operation}."""
    if not isinstance(doc, dict):
        problems.append("openapi.json: the document is not a JSON object")
        return {}
    ver = doc.get("openapi")
    if not isinstance(ver, str) or not re.fullmatch(r"3\.1\.\d+", ver):
        problems.append(f"openapi.json: \"openapi\" must be \"3.1.x\" (got {ver!r})")
    info = doc.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("title"), str) \
            or not isinstance(info.get("version"), str):
        problems.append("openapi.json: \"info\" must be an object with string title and version")
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        problems.append("openapi.json: \"paths\" must be an object")
        return {}
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    op_ids = {}
    ops = {}
    for path, item in paths.items():
        if not path.startswith("/"):
            problems.append(f"openapi.json: path {path!r} does not start with /")
        if not isinstance(item, dict):
            problems.append(f"openapi.json: {path}: path item is not an object")
            continue
        path_params = set(re.findall(r"\{([^}/]+)\}", path))
        for method, op in item.items():
            if method not in METHODS:
                if method not in ("parameters", "summary", "description", "servers", "$ref"):
                    problems.append(f"openapi.json: {path}: unknown key {method!r}")
                continue
            where = f"openapi.json {method.upper()} {path}"
            if not isinstance(op, dict):
                problems.append(f"{where}: operation is not an object")
                continue
            ops[(method, path)] = op
            responses = op.get("responses")
            if not isinstance(responses, dict) or not responses:
                problems.append(f"{where}: no responses")
            else:
                for status, resp in responses.items():
                    if status != "default" and not re.fullmatch(r"[1-5](\d\d|XX)", status):
                        problems.append(f"{where}: response key {status!r} is not a status code")
                    if not isinstance(resp, dict) or not isinstance(resp.get("description"), str):
                        problems.append(f"{where}: response {status} has no description")
                # a redirect is a route's success too (/oauth/start answers 302)
                if not any(s[:1] in ("2", "3") for s in responses):
                    problems.append(f"{where}: no 2xx or 3xx response")
            oid = op.get("operationId")
            if not isinstance(oid, str) or not oid:
                problems.append(f"{where}: no operationId")
            elif oid in op_ids:
                problems.append(f"{where}: operationId {oid!r} also used by {op_ids[oid]}")
            else:
                op_ids[oid] = where
            declared = set()
            for p in op.get("parameters", []) + item.get("parameters", []):
                if not isinstance(p, dict) or "name" not in p or "in" not in p:
                    problems.append(f"{where}: a parameter lacks name/in")
                    continue
                if p["in"] == "path":
                    declared.add(p["name"])
                    if p.get("required") is not True:
                        problems.append(f"{where}: path parameter {p['name']!r} must be required")
            if declared != path_params:
                problems.append(f"{where}: path parameters {sorted(declared)} do not match "
                                f"the path's {sorted(path_params)}")
            roles = op.get("x-brigade-roles")
            if not isinstance(roles, list) or not roles or \
                    not all(isinstance(r, str) for r in roles):
                problems.append(f"{where}: x-brigade-roles must be a non-empty list of role names")
                continue
            bad = set(roles) - KNOWN_ROLES
            if bad:
                problems.append(f"{where}: unknown roles {sorted(bad)}")
            if "public" in roles and len(roles) > 1:
                problems.append(f"{where}: \"public\" cannot be combined with other roles")
            security = op.get("security", doc.get("security"))
            if "public" in roles:
                if security not in ([], [{}]):
                    problems.append(f"{where}: public operation must have \"security\": []")
            else:
                if not security:
                    problems.append(f"{where}: authenticated operation has no security requirement")
                else:
                    for req in security:
                        for name in req:
                            if name not in schemes:
                                problems.append(f"{where}: security scheme {name!r} is not defined")
    return ops


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", default=os.path.join(ROOT, "src", "api", "routes.c"))
    ap.add_argument("--openapi", default=os.path.join(ROOT, "docs", "openapi.json"))
    args = ap.parse_args()

    problems = []
    routes = parse_routes(args.routes, problems)
    try:
        with open(args.openapi, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"openapi: {args.openapi}: {e}")
        return 1
    ops = check_shape(doc, problems)

    for key in sorted(routes.keys() - ops.keys(), key=lambda k: (k[1], k[0])):
        problems.append(f"route {key[0].upper()} {key[1]} (routes.c) is missing from openapi.json")
    for key in sorted(ops.keys() - routes.keys(), key=lambda k: (k[1], k[0])):
        problems.append(f"openapi.json {key[0].upper()} {key[1]} has no route in routes.c")
    for key in sorted(routes.keys() & ops.keys(), key=lambda k: (k[1], k[0])):
        doc_roles = ops[key].get("x-brigade-roles")
        if isinstance(doc_roles, list) and set(doc_roles) != routes[key]:
            problems.append(f"{key[0].upper()} {key[1]}: roles differ: routes.c "
                            f"{sorted(routes[key])}, openapi.json {sorted(doc_roles)}")

    if problems:
        for p in problems:
            print(f"openapi: {p}")
        print(f"openapi: FAILED ({len(problems)} problem{'s' if len(problems) != 1 else ''})")
        return 1
    print(f"openapi: ok ({len(ops)} operations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
