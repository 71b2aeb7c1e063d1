"""Optional learned embeddings: any image-embedding ONNX model, given by path.

``pip install 'leakscan[onnx]'`` and ``leakscan audit DATA --model model.onnx``. The model is
run by onnxruntime on the CPU, in batches, inside the same worker processes that decode
each image once: the image is resized to the model's input size (or ``size`` when the
model accepts any size), scaled to [0, 1], normalised with ``mean``/``std`` (ImageNet's by
default) and laid out as the model's input wants it (NCHW or NHWC, from its input shape).
The first output, flattened per image, is the embedding; it is L2-normalised.

Pairs whose model embeddings have a cosine similarity of at least ``model_min_cosine`` are
reported with kind ``model``. They are not put through leakscan's thumbnail verification:
a copy-detection model (SSCD, for example) is its own verifier and is meant to find copies
the thumbnails cannot confirm. Nothing is downloaded: you bring the file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import InputError
from .settings import MODEL_BATCH

__all__ = ["ModelSpec", "EmbeddingModel", "load_model"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224


@dataclass(frozen=True)
class ModelSpec:
    """What a worker process needs to load the model (picklable)."""

    path: str
    digest: str
    batch_size: int = MODEL_BATCH
    size: int = DEFAULT_SIZE
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    @classmethod
    def from_path(cls, path, *, batch_size: int = MODEL_BATCH, size: int = DEFAULT_SIZE,
                  mean=IMAGENET_MEAN, std=IMAGENET_STD) -> "ModelSpec":
        p = os.path.abspath(os.fspath(path))
        if batch_size < 1:
            raise InputError(f"model batch size must be >= 1, got {batch_size}")
        try:
            with open(p, "rb") as fh:
                h = hashlib.blake2b(digest_size=16)
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as exc:
            raise InputError(f"cannot read model {path}: {exc.strerror or exc}") from exc
        return cls(path=p, digest=h.hexdigest(), batch_size=int(batch_size), size=int(size),
                   mean=tuple(float(x) for x in mean), std=tuple(float(x) for x in std))

    # ---- the extra-embedder hook (leakscan.features.extract_features(model=...))
    @property
    def key(self) -> str:
        """What the feature cache files this embedder's embeddings under: the model file's digest."""
        return self.digest

    def load(self) -> "EmbeddingModel":
        """The runnable model (``preprocess``, ``embed``, ``dim``), loaded once per process."""
        return load_model(self)


class EmbeddingModel:
    """An ONNX image-embedding model ready to run (see the module docstring)."""

    def __init__(self, spec: ModelSpec):
        try:
            import onnxruntime as ort  # noqa: PLC0415 - optional extra
        except ImportError as exc:
            raise InputError("--model needs onnxruntime: pip install 'leakscan[onnx]'") from exc
        self.spec = spec
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # one per worker process: the process pool is the parallelism
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(spec.path, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise InputError(f"cannot load model {spec.path}: {exc}") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(f"model {spec.path} must take one input (an image batch), it takes {len(inputs)}")
        inp = inputs[0]
        shape = list(inp.shape)
        if len(shape) != 4:
            raise InputError(f"model {spec.path}: input {inp.name!r} must be 4-d (N,C,H,W or N,H,W,C), got {shape}")
        if shape[1] == 3:
            self.layout = "NCHW"
            hw = shape[2:4]
        elif shape[3] == 3:
            self.layout = "NHWC"
            hw = shape[1:3]
        else:
            raise InputError(f"model {spec.path}: input {inp.name!r} has no 3-channel axis: {shape}")
        self.height, self.width = (int(d) if isinstance(d, int) and d > 0 else spec.size for d in hw)
        self.input_name = inp.name
        self.input_type = np.float16 if "float16" in inp.type else np.float32
        self._mean = np.array(spec.mean, np.float32)
        self._std = np.array(spec.std, np.float32)

    def preprocess(self, img: Image.Image) -> np.ndarray:
        """The model's view of one canonical RGB image: ``(H, W, 3)`` uint8."""
        if img.size != (self.width, self.height):
            img = img.resize((self.width, self.height), Image.BICUBIC)
        return np.asarray(img.convert("RGB"), np.uint8)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings ``(m, D)`` of ``(m, H, W, 3)`` uint8 images, ``batch_size`` at a time."""
        out = []
        for start in range(0, len(batch), self.spec.batch_size):
            x = (batch[start:start + self.spec.batch_size].astype(np.float32) / 255.0 - self._mean) / self._std
            if self.layout == "NCHW":
                x = x.transpose(0, 3, 1, 2)
            try:
                y = self.session.run(None, {self.input_name: np.ascontiguousarray(x, self.input_type)})[0]
            except Exception as exc:  # a model problem, not an image problem: stop with its name
                raise InputError(f"model {self.spec.path} failed on a batch of {len(x)} "
                                 f"{self.height}x{self.width} images: {exc}") from exc
            out.append(np.asarray(y, np.float32).reshape(len(x), -1))
        if not out:
            return np.zeros((0, 0), np.float32)
        emb = np.concatenate(out)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb

    @property
    def dim(self) -> int:
        return int(self.embed(np.zeros((1, self.height, self.width, 3), np.uint8)).shape[1])


_LOADED: dict = {}


def load_model(spec: ModelSpec) -> EmbeddingModel:
    """The model for ``spec``, loaded once per process."""
    if spec not in _LOADED:
        _LOADED[spec] = EmbeddingModel(spec)
    return _LOADED[spec]
