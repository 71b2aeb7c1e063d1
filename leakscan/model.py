"""Optional learned embeddings: any image-embedding ONNX model, given by path.

``pip install 'leakscan[onnx]'`` and ``leakscan audit DATA --model model.onnx``. The model is
run by onnxruntime on the CPU, in batches, inside the same worker processes that decode
each image once. Each image is resized (bicubic) to the model's input size and laid out as
the model's input wants it (NCHW or NHWC, from its input shape):

- a model whose input is ``uint8`` gets the pixels as they are (0-255; such models do
  their own preprocessing, as SSCD exports do);
- a model whose input is floating point gets the pixels scaled to [0, 1], then normalised
  with the mean and standard deviation of ``normalize``: ``imagenet`` (the default),
  ``clip`` or ``none``.

The input size is, in order: ``size`` when given (``N`` or ``(W, H)``; ``"WxH"`` strings are
accepted), the model's metadata, the model's fixed input size, else 224 (:data:`DEFAULT_SIZE`).
A model can declare its preprocessing in its metadata properties (set with ``onnx``, see the
README): ``leakscan.size`` (``"224"`` or ``"WxH"``), ``leakscan.normalize``
(``imagenet|none|clip``), ``leakscan.mean``/``leakscan.std`` (three comma-separated numbers)
and ``leakscan.layout`` (``NCHW|NHWC``); the common keys ``image_size``/``input_size`` and
``mean``/``std`` are read too. Explicit options win over metadata.

The first output, flattened per image, is the embedding; it is L2-normalised (one with NaN or
inf becomes zeros: no evidence). Nothing is
downloaded: you bring the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import ConfigError, InputError
from .settings import MODEL_BATCH

log = logging.getLogger(__name__)

__all__ = ["ModelSpec", "EmbeddingModel", "load_model", "parse_size", "NORMALIZE", "DEFAULT_SIZE"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: The normalisations a float model can ask for: name -> (mean, std) of [0, 1] pixels.
NORMALIZE = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "clip": (CLIP_MEAN, CLIP_STD),
             "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))}
DEFAULT_SIZE = 224
#: The most numbers an output of more than two axes may hold per image to be read as its
#: embedding, flattened ((N, 512, 1, 1) is; a feature map (N, 2048, 7, 7) or a ViT's tokens
#: (N, 197, 768) are not: a million-wide index would not fit in memory).
MAX_EMBED_DIM = 8192

_TYPES = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32, "tensor(float16)": np.float16,
          "tensor(double)": np.float64}


def parse_size(value, name: str = "model_size") -> tuple[int, int] | None:
    """``(width, height)`` of a model input size: ``224``, ``"224"``, ``"160x128"`` or ``(160, 128)``;
    else a ConfigError whose message starts with ``name`` (the keyword, or where the value was read).

    >>> parse_size("160x128"), parse_size(96), parse_size(None)
    ((160, 128), (96, 96), None)
    """
    if value is None:
        return None
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX*,]\s*(\d+)\s*)?", value)
        if not m:
            raise ConfigError(f"{name} must be N or WxH (e.g. 224 or 160x128), got {value!r}", keyword=name)
        w = int(m.group(1))
        h = int(m.group(2)) if m.group(2) else w
    elif isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ConfigError(f"{name} must be N or (W, H), got {value!r}", keyword=name)
        w, h = (int(v) for v in value)
    else:
        w = h = int(value)
    if not (1 <= w <= 8192 and 1 <= h <= 8192):
        raise ConfigError(f"{name} must be between 1 and 8192 pixels a side, got {w}x{h}", keyword=name)
    return w, h


def _check_normalize(value, name: str = "model_normalize"):
    """``value`` as one of :data:`NORMALIZE`'s names (None: not given); else a ConfigError whose
    message starts with ``name``."""
    if value is None:
        return None
    v = str(value).strip().lower()
    if v not in NORMALIZE:
        raise ConfigError(f"{name} must be one of {', '.join(NORMALIZE)}, got {value!r}", keyword=name)
    return v


def _fixed(dim) -> bool:
    """Whether an input axis has a fixed length (not a named or unknown dynamic one)."""
    return isinstance(dim, int) and dim > 0


def _triple(text: str, key: str):
    try:
        vals = tuple(float(x) for x in re.split(r"[\s,;]+", text.strip(" []()")) if x)
    except ValueError:
        vals = ()
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise InputError(f"metadata {key} must be three numbers, got {text!r}")
    return vals


@dataclass(frozen=True)
class ModelSpec:
    """What a worker process needs to load the model (picklable).

    ``size`` ``(W, H)`` and ``normalize`` are the caller's explicit choices (None: the
    model's metadata, else its fixed size or 224, and ImageNet). ``mean``/``std``, when
    given, override the normalisation's. ``digest`` identifies the file *and* these choices
    (cached embeddings are per digest).
    """

    path: str
    digest: str
    batch_size: int = MODEL_BATCH
    size: tuple | None = None
    mean: tuple | None = None
    std: tuple | None = None
    normalize: str | None = None

    @classmethod
    def from_path(cls, path, *, batch_size: int = MODEL_BATCH, size=None, normalize: str | None = None,
                  mean=None, std=None) -> "ModelSpec":
        p = os.path.abspath(os.fspath(path))
        if batch_size < 1:
            raise ConfigError(f"model_batch must be >= 1, got {batch_size}", keyword="model_batch")
        size = parse_size(size)
        normalize = _check_normalize(normalize)
        mean = None if mean is None else tuple(float(x) for x in mean)
        std = None if std is None else tuple(float(x) for x in std)
        if std is not None and min(std) <= 0:
            raise InputError(f"model std must be positive, got {std}")
        try:
            with open(p, "rb") as fh:
                h = hashlib.blake2b(digest_size=16)
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as exc:
            raise InputError(f"cannot read model {path}: {exc.strerror or exc}") from exc
        h.update(repr(("preprocess-v2", size, normalize, mean, std)).encode())
        return cls(path=p, digest=h.hexdigest(), batch_size=int(batch_size), size=size,
                   mean=mean, std=std, normalize=normalize)

    # ---- the extra-embedder hook (leakscan.features.extract_features(model=...))
    @property
    def key(self) -> str:
        """What the feature cache files this embedder's embeddings under: the model file's digest."""
        return self.digest

    def load(self) -> "EmbeddingModel":
        """The runnable model (``preprocess``, ``embed``, ``dim``), loaded once per process."""
        return load_model(self)


class EmbeddingModel:
    """An ONNX image-embedding model ready to run (see the module docstring).

    After loading: ``width``, ``height``, ``layout`` (``NCHW``/``NHWC``), ``input_type``
    (a numpy dtype), ``normalize`` (the name used for float inputs, ``None`` for uint8
    inputs) and ``metadata`` (the model's metadata properties).
    """

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
        try:
            self.metadata = dict(self.session.get_modelmeta().custom_metadata_map or {})
        except Exception:  # noqa: BLE001 - metadata is optional
            self.metadata = {}
        meta = {k.lower(): v for k, v in self.metadata.items()}
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(f"model {spec.path} must take one input (an image batch), it takes {len(inputs)}")
        inp = inputs[0]
        shape = list(inp.shape)
        if len(shape) != 4:
            raise InputError(f"model {spec.path}: input {inp.name!r} must be 4-d (N,C,H,W or N,H,W,C), got {shape}")
        layout = meta.get("leakscan.layout", "").strip().upper()
        if layout not in ("", "NCHW", "NHWC"):
            raise InputError(f"model {spec.path}: metadata leakscan.layout must be NCHW or NHWC, got {layout!r}")
        if not layout:
            if shape[1] == 3:
                layout = "NCHW"
            elif shape[3] == 3:
                layout = "NHWC"
            elif _fixed(shape[1]) and _fixed(shape[3]):  # a grey (1) or RGBA (4) model: no layout helps
                raise InputError(f"model {spec.path}: input {inp.name!r} has no 3-channel axis: {shape}; "
                                 "leakscan feeds RGB images (3 channels)")
            else:
                raise InputError(f"model {spec.path}: input {inp.name!r} has no 3-channel axis: {shape} "
                                 "(set metadata leakscan.layout)")
        channels = shape[1] if layout == "NCHW" else shape[3]
        if _fixed(channels) and channels != 3:  # metadata leakscan.layout naming another axis
            raise InputError(f"model {spec.path}: metadata leakscan.layout says {layout}, but input {inp.name!r} "
                             f"{shape} then has {channels} channels; leakscan feeds RGB images (3 channels)")
        self.layout = layout
        # exported without a batch axis (torch.onnx.export without dynamic_axes: 1): fed that many
        self.fixed_batch = int(shape[0]) if isinstance(shape[0], int) and shape[0] > 0 else None
        hw = shape[2:4] if layout == "NCHW" else shape[1:3]
        fixed = [int(d) if isinstance(d, int) and d > 0 else None for d in hw]  # (H, W)
        size = parse_size(spec.size)  # also an int, for ModelSpec(..., size=224) built by hand
        hint = "drop --model-size"
        if size is None:
            for key in ("leakscan.size", "image_size", "input_size"):
                if meta.get(key, "").strip():
                    try:
                        size = parse_size(meta[key], f"metadata {key}")
                    except ConfigError as exc:  # the model's fault, not an option's
                        raise InputError(f"model {spec.path}: {exc}") from exc
                    hint = f"its metadata {key} says {meta[key].strip()}: fix or remove it"
                    break
        if size is None:
            size = (fixed[1] or DEFAULT_SIZE, fixed[0] or DEFAULT_SIZE)
        self.width, self.height = size
        if (fixed[0] not in (None, self.height)) or (fixed[1] not in (None, self.width)):
            raise InputError(f"model {spec.path} takes {fixed[1] or '*'}x{fixed[0] or '*'} images only, "
                             f"not {self.width}x{self.height} ({hint})")
        self.input_name = inp.name
        if inp.type not in _TYPES:
            raise InputError(f"model {spec.path}: input {inp.name!r} has type {inp.type}; "
                             f"leakscan feeds {', '.join(_TYPES)}")
        self.input_type = _TYPES[inp.type]
        if self.input_type == np.uint8:
            self.normalize = None  # pixels as they are
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        else:
            name = spec.normalize
            if name is None and meta.get("leakscan.normalize", "").strip():
                try:
                    name = _check_normalize(meta["leakscan.normalize"], "metadata leakscan.normalize")
                except ConfigError as exc:  # the model's fault, not an option's
                    raise InputError(f"model {spec.path}: {exc}") from exc
            mean, std = NORMALIZE[name or "imagenet"]
            if spec.normalize is None:  # explicit mean/std in metadata (when no explicit choice)
                for mkey, skey in (("leakscan.mean", "leakscan.std"), ("mean", "std")):
                    if bool(meta.get(mkey, "").strip()) != bool(meta.get(skey, "").strip()):
                        raise InputError(f"model {spec.path}: metadata {mkey} and {skey} go together; "
                                         f"it has only {mkey if meta.get(mkey, '').strip() else skey}")
                    if meta.get(mkey) and meta.get(skey):
                        try:
                            mean, std = _triple(meta[mkey], mkey), _triple(meta[skey], skey)
                        except InputError as exc:
                            raise InputError(f"model {spec.path}: {exc}") from exc
                        if max(mean + std) > 1:  # written for 0-255 pixels (123.675, ...): leakscan's are 0-1
                            mean, std = tuple(v / 255 for v in mean), tuple(v / 255 for v in std)
                            log.info("model %s: metadata %s/%s read on the 0-255 scale", spec.path, mkey, skey)
                        name = name or "metadata"
                        break
            mean = spec.mean if spec.mean is not None else mean
            std = spec.std if spec.std is not None else std
            self.normalize = name or "imagenet"
        self._mean = np.array(mean, np.float32)
        self._std = np.array(std, np.float32)
        if (self._std.shape != (3,) or self._mean.shape != (3,) or not (self._std > 0).all()
                or not np.isfinite(np.concatenate([self._mean, self._std])).all()):
            raise InputError(f"model {spec.path}: mean and std must be three finite numbers, std > 0; "
                             f"got {mean}, {std}")

    def preprocess(self, img: Image.Image) -> np.ndarray:
        """The model's view of one canonical RGB image: ``(H, W, 3)`` uint8."""
        if img.size != (self.width, self.height):
            img = img.resize((self.width, self.height), Image.BICUBIC)
        return np.asarray(img.convert("RGB"), np.uint8)

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        """The model input for ``(m, H, W, 3)`` uint8 views: typed, scaled, normalised, laid out."""
        if self.input_type == np.uint8:
            x = np.asarray(batch, np.uint8)
        else:
            x = (batch.astype(np.float32) / 255.0 - self._mean) / self._std
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, self.input_type)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings ``(m, D)`` of ``(m, H, W, 3)`` uint8 images, ``batch_size`` at a
        time (a model with a fixed batch size: that many, the last batch filled up with its last image)."""
        out = []
        step = self.fixed_batch or self.spec.batch_size
        for s in range(0, len(batch), step):
            x = self.prepare(batch[s:s + step])
            m = len(x)
            if self.fixed_batch and m < self.fixed_batch:
                x = np.concatenate([x, np.repeat(x[-1:], self.fixed_batch - m, axis=0)])
            try:
                y = self.session.run(None, {self.input_name: x})[0]
            except Exception as exc:  # a model problem, not an image problem: stop with its name
                raise InputError(f"model {self.spec.path} failed on a batch of {len(x)} "
                                 f"{self.width}x{self.height} images: {exc}") from exc
            y = np.asarray(y, np.float32)
            if y.ndim == 0 or y.shape[0] != len(x):  # a scalar, or an output that mixes the batch's images
                raise InputError(f"model {self.spec.path}: its first output is {tuple(y.shape)} for a batch of "
                                 f"{len(x)} images, not one embedding per image (N, D); export a module that "
                                 "returns one (README: Exporting a PyTorch or Hugging Face model)")
            if y[0].size < 2:  # (N, 0) matches nothing; (N,) or (N, 1) is a score whose cosine is +-1 for every pair
                raise InputError(f"model {self.spec.path}: its first output is {tuple(y.shape)}, "
                                 f"{y[0].size} number(s) per image, not an embedding; export a module that returns "
                                 "one embedding per image (N, D) (README: Exporting a PyTorch or Hugging Face model)")
            if y.ndim > 2 and y[0].size > MAX_EMBED_DIM:  # a feature map or tokens, not one vector per image
                raise InputError(f"model {self.spec.path}: its first output is {tuple(y.shape)}, not one embedding "
                                 f"per image (N, D); export a module that returns a pooled embedding first (README: "
                                 "Exporting a PyTorch or Hugging Face model)")
            out.append(y[:m].reshape(m, -1))
        if not out:
            return np.zeros((0, 0), np.float32)
        emb = np.concatenate(out)
        bad = ~np.isfinite(emb).all(axis=1)
        if bad.any():  # NaN or inf would poison the search (FAISS refuses to train on them) and the evidence
            log.warning("model %s gave %d of %d images an embedding with NaN or inf: read as zeros (no evidence)",
                        os.path.basename(self.spec.path), int(bad.sum()), len(emb))
            emb[bad] = 0.0
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb

    @property
    def dim(self) -> int:
        return int(self.embed(np.zeros((1, self.height, self.width, 3), np.uint8)).shape[1])

    def describe(self) -> str:
        """One line: what the model is fed, e.g. ``128x128 uint8 NHWC`` or ``224x224 float NCHW imagenet``."""
        kind = "uint8" if self.input_type == np.uint8 else f"{np.dtype(self.input_type).name} {self.normalize}"
        return f"{self.width}x{self.height} {kind} {self.layout}"


_LOADED: dict = {}


def load_model(spec: ModelSpec) -> EmbeddingModel:
    """The model for ``spec``, loaded once per process."""
    if spec not in _LOADED:
        _LOADED[spec] = EmbeddingModel(spec)
        log.info("model %s: fed %s", os.path.basename(spec.path), _LOADED[spec].describe())
    return _LOADED[spec]
