#!/usr/bin/env python3
"""Read and check a load mix (load-mix.toml; the format is described at the top of that file).

  loadmix.py check FILE   check every rule; print one line per request kind
  loadmix.py smoke FILE   one line per request kind and end of its id range, fields separated by
                          \\x1f: name, method, path with {id} filled in, body, content type
  loadmix.py wrk FILE     a wrk Lua script that sends the mix (weights, random ids in range)
  loadmix.py json FILE    the checked request kinds as a JSON array (for script/request-costs.rb)

Exits 1 with a message naming the file, the entry and the field when the mix breaks a rule.
"""
import json
import re
import sys

try:
    import tomllib
except ImportError:
    sys.exit("loadmix.py: needs Python >= 3.11 (tomllib); on Debian 12: apt-get install -y python3")

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
FIELDS = {"name", "method", "path", "ids", "body", "content_type", "weight"}
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def load(path):
    def bad(where, msg):
        sys.exit(f"loadmix.py: {path}: {where}: {msg}")

    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        sys.exit(f"loadmix.py: cannot read {path}: {e.strerror}")
    except tomllib.TOMLDecodeError as e:
        sys.exit(f"loadmix.py: {path} is not valid TOML: {e}")

    if doc.get("format") != 1:
        bad("format", f"expected `format = 1`, found {doc.get('format')!r}")
    extra = set(doc) - {"format", "request"}
    if extra:
        bad("top level", f"unknown keys {sorted(extra)} (allowed: format, [[request]])")
    reqs = doc.get("request")
    if not isinstance(reqs, list) or not reqs:
        bad("[[request]]", "at least one [[request]] table is needed")

    seen = set()
    for i, r in enumerate(reqs, 1):
        where = f"[[request]] #{i} ({r.get('name', 'no name')})"
        unknown = set(r) - FIELDS
        if unknown:
            bad(where, f"unknown fields {sorted(unknown)} (allowed: {sorted(FIELDS)})")
        for key in ("name", "method", "path", "weight"):
            if key not in r:
                bad(where, f"`{key}` is required")
        if not isinstance(r["name"], str) or not NAME_RE.match(r["name"]):
            bad(where, "`name` must be letters, digits, '_' or '-'")
        if r["name"] in seen:
            bad(where, f"`name` {r['name']!r} is used twice")
        seen.add(r["name"])
        if r["method"] not in METHODS:
            bad(where, f"`method` {r['method']!r} is not one of {sorted(METHODS)}")
        if not isinstance(r["path"], str) or not r["path"].startswith("/") or any(
            c.isspace() for c in r["path"]
        ):
            bad(where, "`path` must start with '/' and contain no whitespace")
        if "{id}" in r["path"]:
            ids = r.get("ids")
            if not (
                isinstance(ids, list)
                and len(ids) == 2
                and all(type(x) is int for x in ids)
                and 1 <= ids[0] <= ids[1]
            ):
                bad(where, "`path` has {id}, so `ids = [min, max]` with 1 <= min <= max is required")
        elif "ids" in r:
            bad(where, "`ids` is set but `path` has no {id}")
        if ("body" in r) != ("content_type" in r):
            bad(where, "`body` and `content_type` go together: set both or neither")
        if "body" in r and not isinstance(r["body"], str):
            bad(where, "`body` must be a string")
        if type(r["weight"]) is not int or r["weight"] < 1:
            bad(where, "`weight` must be an integer >= 1")
    return reqs


def fill(path, n):
    return path.replace("{id}", str(n))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "smoke", "wrk", "json"):
        sys.exit("usage: loadmix.py check|smoke|wrk|json FILE")
    mode, path = sys.argv[1], sys.argv[2]
    reqs = load(path)
    total = sum(r["weight"] for r in reqs)
    if mode == "check":
        for r in reqs:
            ids = f" ids {r['ids'][0]}..{r['ids'][1]}" if "ids" in r else ""
            print(f"{r['name']:<18} {r['method']:<6} {r['path']}{ids}  1 in {total / r['weight']:.1f}")
        print(f"{path}: {len(reqs)} kinds of request, total weight {total}: ok")
    elif mode == "smoke":
        for r in reqs:
            for n in sorted(set(r.get("ids", [0]))):
                fields = [r["name"], r["method"], fill(r["path"], n), r.get("body", ""), r.get("content_type", "")]
                print("\x1f".join(fields))
    elif mode == "json":
        print(json.dumps(reqs, indent=1))
    else:
        print(wrk_script(path, reqs, total))


def wrk_script(path, reqs, total):
    entries = []
    acc = 0
    for r in reqs:
        acc += r["weight"]
        lo, hi = r.get("ids", [0, 0])
        headers = {"Content-Type": r["content_type"]} if "content_type" in r else {}
        entries.append(
            "  {upto = %d, method = %s, path = %s, lo = %d, hi = %d, body = %s, headers = {%s}},"
            % (
                acc,
                json.dumps(r["method"]),
                json.dumps(r["path"]),
                lo,
                hi,
                json.dumps(r["body"]) if "body" in r else "nil",
                ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()),
            )
        )
    return f"""-- Generated by script/loadmix.py from {path}; do not edit.
-- Picks a request kind with probability weight / {total}, fills {{id}} uniformly from its range.
local mix = {{
{chr(10).join(entries)}
}}
local total = {total}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(1000 + seed)
end

function request()
  local x = math.random(total)
  for _, e in ipairs(mix) do
    if x <= e.upto then
      local p = e.path
      if e.hi > 0 then
        p = p:gsub("{{id}}", tostring(math.random(e.lo, e.hi)))
      end
      return wrk.format(e.method, p, e.headers, e.body)
    end
  end
end"""


if __name__ == "__main__":
    main()
