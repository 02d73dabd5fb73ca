"""Iris classifier served the way ML teams usually serve one: FastAPI on uvicorn, the model in ONNX.

    GET  /healthz   200 once the model is loaded; 503 while loading, after a failed load, or draining
    POST /predict   {"instances": [[5.1, 3.5, 1.4, 0.2]]} -> labels, probabilities, model_version

The model loads in the background after the port opens, so the load balancer sees an answering
but unready target (503) rather than a refused connection, and the wait is visible in the logs.
On SIGTERM uvicorn stops accepting connections and lets in-flight requests finish for up to
MODEL_DRAIN_SECONDS; /healthz answers "draining" meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, FiniteFloat

log = logging.getLogger("fastapi-onnx")


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8000
    model_path: Path = Path(__file__).resolve().parent / "model.onnx"
    model_version: str = "dev"  # the release version: the image build sets it from MODEL_VERSION
    warmup_seconds: float = 0.0  # simulated extra load time (exercises the health check grace period)
    max_instances: int = 1000
    drain_seconds: float = 20.0  # keep under the task's stopTimeout
    keepalive_seconds: int = 75  # above the ALB's idle timeout, as AWS advises for targets
    # Threads onnxruntime may use per inference: a Fargate task's vCPUs, not the host's cores.
    threads: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        try:
            settings = cls(
                host=env.get("HOST", cls.host),
                port=int(env.get("PORT", cls.port)),
                model_path=Path(env.get("MODEL_PATH", str(cls.model_path))),
                model_version=env.get("MODEL_VERSION", cls.model_version),
                warmup_seconds=float(env.get("MODEL_WARMUP_SECONDS", cls.warmup_seconds)),
                max_instances=int(env.get("MODEL_MAX_INSTANCES", cls.max_instances)),
                drain_seconds=float(env.get("MODEL_DRAIN_SECONDS", cls.drain_seconds)),
                keepalive_seconds=int(env.get("MODEL_KEEPALIVE_SECONDS", cls.keepalive_seconds)),
                threads=int(env.get("MODEL_THREADS", cls.threads)),
            )
        except ValueError as exc:
            raise SystemExit(f"bad setting: {exc}") from None
        if not 0 < settings.port < 65536 or settings.max_instances < 1 or settings.threads < 1:
            raise SystemExit("bad setting: PORT must be 1-65535, MODEL_MAX_INSTANCES and MODEL_THREADS at least 1")
        return settings


class Model:
    """An ONNX classifier with the feature and class names its training wrote into the file."""

    def __init__(self, path: Path, threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.features = tuple(meta["feature_names"].split(","))
        self.classes = tuple(meta["class_names"].split(","))
        self.input = self.session.get_inputs()[0].name

    def predict(self, rows: list[list[float]]) -> tuple[list[str], list[list[float]]]:
        labels, probabilities = self.session.run(None, {self.input: np.asarray(rows, dtype=np.float32)})
        return [str(label) for label in labels], np.round(probabilities.astype(float), 6).tolist()


class State:
    """What /healthz reports; set by the loader and by the shutdown signal."""

    def __init__(self) -> None:
        self.model: Model | None = None
        self.status = "loading"  # loading | ok | failed | draining
        self.reason = ""


class PredictRequest(BaseModel):
    # FiniteFloat: NaN and Infinity (which Python's JSON parser accepts) are refused with a 422.
    instances: Annotated[list[list[FiniteFloat]], Field(min_length=1)]


class PredictResponse(BaseModel):
    predictions: list[str]
    probabilities: list[list[float]]
    classes: list[str]
    model_version: str


def create_app(settings: Settings, state: State | None = None) -> FastAPI:
    state = state or State()

    async def load() -> None:
        began = time.monotonic()
        try:
            # A thread: a large model's load must not stall /healthz answers on the event loop.
            model = await asyncio.to_thread(Model, settings.model_path, settings.threads)
            await asyncio.sleep(settings.warmup_seconds)
        except Exception as exc:  # noqa: BLE001 - any load failure keeps the target unhealthy, and says why
            state.status, state.reason = "failed", f"{type(exc).__name__}: {exc}"
            log.error("model not loaded, /healthz stays 503: %s", state.reason)
            return
        if state.status == "loading":
            state.model, state.status = model, "ok"
            log.info(
                "model %s loaded from %s in %.2fs (features %s)",
                settings.model_version, settings.model_path, time.monotonic() - began, ",".join(model.features),
            )  # fmt: skip

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(load())
        yield
        task.cancel()

    app = FastAPI(title="iris (ONNX)", version=settings.model_version, lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input, which fails to encode for NaN and copies client data to logs.
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        body: dict[str, Any] = {"status": state.status, "model_version": settings.model_version}
        if state.reason:
            body["reason"] = state.reason
        return JSONResponse(body, status_code=200 if state.status == "ok" else 503)

    @app.post("/predict")
    def predict(request: PredictRequest) -> PredictResponse:
        # A plain `def`: FastAPI runs it in its thread pool, so inference never blocks the event loop.
        model = state.model
        if model is None:
            raise HTTPException(503, detail=f"model not ready ({state.status})")
        if len(request.instances) > settings.max_instances:
            raise HTTPException(422, detail=f"at most {settings.max_instances} instances per request")
        for index, row in enumerate(request.instances):
            if len(row) != len(model.features):
                raise HTTPException(
                    422, detail=f"instance {index} has {len(row)} values; expected {', '.join(model.features)}"
                )
        labels, probabilities = model.predict(request.instances)
        return PredictResponse(
            predictions=labels,
            probabilities=probabilities,
            classes=list(model.classes),
            model_version=settings.model_version,
        )

    return app


class Server(uvicorn.Server):
    """uvicorn's server, telling /healthz it drains as soon as the stop signal arrives."""

    def __init__(self, config: uvicorn.Config, state: State) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.state.status != "draining":
            log.info("signal %d: draining (new connections refused, in-flight requests finish)", sig)
        self.state.status = "draining"
        super().handle_exit(sig, frame)


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(os.environ)
    state = State()
    config = uvicorn.Config(
        create_app(settings, state),
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=int(settings.drain_seconds),
        timeout_keep_alive=settings.keepalive_seconds,
        proxy_headers=True,  # the ALB's X-Forwarded-For in the access log
        forwarded_allow_ips="*",  # only the load balancer reaches the task (its security group)
        log_config=None,  # keep the one-line format above
    )
    server = Server(config, state)
    # After a drain uvicorn re-raises the signal, so a stopped task exits as killed by SIGTERM (143)
    # like any process that honours it; returning here means it never started (e.g. the port was taken).
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
