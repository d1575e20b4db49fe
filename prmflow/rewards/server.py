"""The PRM reward as an HTTP endpoint, for RL frameworks that call a reward server.

``python -m prmflow.rewards.server --prm PRM_DIR [--port 8000] [--aggregation min] [--segment lines]``
serves on 127.0.0.1 only (a reward server has no authentication; put a proxy in front to expose it).

``POST /score`` with a JSON body::

    {"items": [{"prompt": "...", "response": "..."}, ...],   # a batch: scored together
     "aggregation": "min"}                                    # optional: min | last | mean

answers ``{"rewards": [r, ...], "step_scores": [[s, ...], ...]}`` in the items' order (an item may
give ``"steps": [...]`` instead of ``response`` to skip segmenting). ``GET /health`` answers
``{"ok": true}``. A malformed request is a 400 with ``{"error": "..."}`` naming what was wrong. The
model loads once; requests are scored one batch at a time (a lock around the model).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prmflow.rewards.prm import AGGREGATIONS, Item, PRMReward, aggregate, segmenter

HOST = "127.0.0.1"
MAX_BODY = 64 << 20


class BadRequest(ValueError):
    pass


def parse_request(body: bytes, default_segment) -> tuple[list[Item], list[list[str] | None], str | None]:
    try:
        data = json.loads(body)
    except ValueError as e:
        raise BadRequest(f"the body is not JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise BadRequest('the body must be {"items": [{"prompt": ..., "response": ...}, ...]}')
    how = data.get("aggregation")
    if how is not None and how not in AGGREGATIONS:
        raise BadRequest(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {how!r}")
    items, given = [], []
    for i, raw in enumerate(data["items"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("prompt", ""), str):
            raise BadRequest(f"items[{i}] must be an object with a string prompt")
        steps = raw.get("steps")
        if steps is not None:
            if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
                raise BadRequest(f"items[{i}].steps must be a list of strings")
        elif not isinstance(raw.get("response"), str):
            raise BadRequest(f"items[{i}] needs a string response (or steps)")
        items.append(Item(prompt=raw.get("prompt", ""), response=raw.get("response") or "", segment=default_segment))
        given.append(steps)
    return items, given, how


class RewardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, reward: PRMReward, port: int = 0, segment=None) -> None:
        super().__init__((HOST, port), Handler)
        self.reward = reward
        self.segment = segmenter(segment)
        self.lock = threading.Lock()

    def score(self, body: bytes) -> dict:
        items, given, how = parse_request(body, self.segment)
        with self.lock:
            segmented = self.reward.step_scores(items)
            explicit = [i for i, s in enumerate(given) if s is not None]
            if explicit:
                scores = self.reward.scorer.score_many([(items[i].prompt, given[i]) for i in explicit])
                for i, s in zip(explicit, scores, strict=True):
                    segmented[i] = s
        how = how or self.reward.aggregation
        return {"rewards": [aggregate(s, how) for s in segmented], "step_scores": segmented}


class Handler(BaseHTTPRequestHandler):
    server: RewardServer

    def _send(self, code: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/health":
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": f"no such path {self.path!r}; POST /score or GET /health"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/score":
            self._send(404, {"error": f"no such path {self.path!r}; POST /score"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            self._send(400, {"error": f"Content-Length must be in 1..{MAX_BODY}, got {length}"})
            return
        try:
            self._send(200, self.server.score(self.rfile.read(length)))
        except BadRequest as e:
            self._send(400, {"error": str(e)})

    def log_message(self, format: str, *args) -> None:  # quiet: one line per request is noise at RL rates
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m prmflow.rewards.server",
                                description="Serve a prmflow PRM's step scores as rewards on 127.0.0.1.")
    p.add_argument("--prm", required=True, help="a directory written by `prmflow train-prm`")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--aggregation", default="min", choices=AGGREGATIONS)
    p.add_argument("--segment", default="lines", help="the run's segment strategy: lines | paragraphs | step-markers")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=16)
    a = p.parse_args(argv)
    server = RewardServer(PRMReward(a.prm, a.aggregation, a.device, a.batch_size), a.port, {"strategy": a.segment})
    print(f"prmflow reward server on http://{HOST}:{server.server_address[1]}/score", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
