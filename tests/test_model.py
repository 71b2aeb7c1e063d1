"""The optional ONNX embedding backend (--model), on tiny models the tests build themselves."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from leakscan import audit  # noqa: E402
from leakscan.errors import InputError  # noqa: E402
from leakscan.model import EmbeddingModel, ModelSpec  # noqa: E402
from leakscan.settings import DetectSettings  # noqa: E402
from conftest import scene  # noqa: E402


def pool_model(path, size=16, layout="NCHW", dynamic=False, dtype="float", metadata=None, batch="N"):
    """A real ONNX graph: 4x4 average pooling, flattened: a 3*(size/4)^2-d embedding.

    ``dtype="uint8"`` takes uint8 pixels and casts them to float inside the graph (as models
    with their preprocessing inside do); ``metadata`` becomes the model's metadata properties.
    """
    if layout == "NCHW":
        shape = [batch, 3, "H", "W"] if dynamic else [batch, 3, size, size]
        nodes, first = [], "x"
    else:
        shape = [batch, "H", "W", 3] if dynamic else [batch, size, size, 3]
        nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2])]
        first = "xt"
    elem = TensorProto.FLOAT
    if dtype == "uint8":
        elem = TensorProto.UINT8
        nodes.append(helper.make_node("Cast", [first], ["xf"], to=TensorProto.FLOAT))
        first = "xf"
    nodes += [helper.make_node("AveragePool", [first], ["p"], kernel_shape=[4, 4], strides=[4, 4]),
              helper.make_node("Flatten", ["p"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info("x", elem, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, None])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    if metadata:
        onnx.helper.set_model_props(m, metadata)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def reference(img, size=16, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1 / 255.0):
    """The pooled embedding computed with numpy; ``size`` is N or (W, H)."""
    w, h = (size, size) if isinstance(size, int) else size
    x = np.asarray(img.convert("RGB").resize((w, h), Image.BICUBIC), np.float32) * scale
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    p = x.reshape(h // 4, 4, w // 4, 4, 3).mean(axis=(1, 3))  # (h, w, c)
    v = p.transpose(2, 0, 1).reshape(-1)
    return v / np.linalg.norm(v)


CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
RAW = dict(mean=(0, 0, 0), std=(1, 1, 1), scale=1.0)


def embed(model, imgs):
    return model.embed(np.stack([model.preprocess(i) for i in imgs]))


@pytest.mark.parametrize("dynamic", [False, True])
def test_uint8_nhwc_model_gets_the_pixels_as_they_are(tmp_path, dynamic):
    path = pool_model(tmp_path / "u8.onnx", layout="NHWC", dtype="uint8", dynamic=dynamic)
    imgs = [scene(s, 40) for s in range(5)]
    model = EmbeddingModel(ModelSpec.from_path(path, size=None if not dynamic else "16"))
    assert (model.width, model.height, model.layout, model.input_type) == (16, 16, "NHWC", np.uint8)
    assert model.normalize is None and model.describe() == "16x16 uint8 NHWC"
    assert model.prepare(np.full((1, 16, 16, 3), 200, np.uint8)).dtype == np.uint8
    np.testing.assert_allclose(embed(model, imgs), np.stack([reference(i, **RAW) for i in imgs]), atol=1e-5)
    # normalize is for float inputs: it changes nothing here
    same = EmbeddingModel(ModelSpec.from_path(path, size=16, normalize="clip"))
    np.testing.assert_allclose(embed(same, imgs), embed(model, imgs), atol=1e-6)


@pytest.mark.parametrize("normalize, mean_std", [("imagenet", None), ("clip", CLIP), ("none", ((0, 0, 0), (1, 1, 1)))])
def test_float_nchw_model_is_scaled_and_normalised(tmp_path, normalize, mean_std):
    path = pool_model(tmp_path / "f.onnx", dynamic=True)
    imgs = [scene(s, 40) for s in range(5)]
    model = EmbeddingModel(ModelSpec.from_path(path, size="24x16", normalize=normalize))
    assert (model.width, model.height, model.layout, model.input_type) == (24, 16, "NCHW", np.float32)
    ref_kw = {} if mean_std is None else dict(mean=mean_std[0], std=mean_std[1])
    np.testing.assert_allclose(embed(model, imgs), np.stack([reference(i, (24, 16), **ref_kw) for i in imgs]),
                               atol=1e-5)


def test_preprocessing_declared_in_the_model_metadata(tmp_path):
    meta = {"leakscan.size": "24x16", "leakscan.normalize": "clip"}
    path = pool_model(tmp_path / "meta.onnx", dynamic=True, metadata=meta)
    imgs = [scene(s, 40) for s in range(5)]
    model = EmbeddingModel(ModelSpec.from_path(path))
    assert (model.width, model.height, model.normalize) == (24, 16, "clip")
    assert model.metadata == meta
    np.testing.assert_allclose(embed(model, imgs),
                               np.stack([reference(i, (24, 16), *CLIP) for i in imgs]), atol=1e-5)
    # explicit options win over the metadata
    mine = EmbeddingModel(ModelSpec.from_path(path, size=20, normalize="none"))
    assert (mine.width, mine.height, mine.normalize) == (20, 20, "none")
    np.testing.assert_allclose(embed(mine, imgs), np.stack([reference(i, 20, (0, 0, 0), (1, 1, 1)) for i in imgs]),
                               atol=1e-5)
    # common keys: image_size, mean and std
    other = pool_model(tmp_path / "common.onnx", dynamic=True,
                       metadata={"image_size": "20", "mean": "0.5,0.5,0.5", "std": "[0.25, 0.25, 0.25]"})
    m2 = EmbeddingModel(ModelSpec.from_path(other))
    assert (m2.width, m2.height) == (20, 20)
    np.testing.assert_allclose(embed(m2, imgs), np.stack([reference(i, 20, (0.5,) * 3, (0.25,) * 3) for i in imgs]),
                               atol=1e-5)
    # a uint8 model's metadata size is honoured too
    u8 = pool_model(tmp_path / "u8meta.onnx", layout="NHWC", dtype="uint8", dynamic=True,
                    metadata={"leakscan.size": "12"})
    assert EmbeddingModel(ModelSpec.from_path(u8)).describe() == "12x12 uint8 NHWC"


def test_preprocessing_options_are_checked(tmp_path):
    fixed = pool_model(tmp_path / "fixed.onnx", size=16)
    dyn = pool_model(tmp_path / "dyn.onnx", dynamic=True)
    with pytest.raises(InputError, match="takes 16x16 images only"):
        EmbeddingModel(ModelSpec.from_path(fixed, size=32))
    assert EmbeddingModel(ModelSpec.from_path(fixed, size="16x16")).width == 16
    assert (EmbeddingModel(ModelSpec.from_path(dyn)).width, EmbeddingModel(ModelSpec.from_path(dyn)).height) == (224, 224)
    with pytest.raises(ValueError, match="^model_size must be N or WxH"):
        ModelSpec.from_path(dyn, size="big")
    with pytest.raises(ValueError, match="^model_normalize must be one of imagenet, clip, none"):
        ModelSpec.from_path(dyn, normalize="zscore")
    bad = pool_model(tmp_path / "badmeta.onnx", dynamic=True, metadata={"leakscan.normalize": "zscore"})
    with pytest.raises(InputError, match="metadata leakscan.normalize must be one of imagenet, clip, none, got 'zscore'"):
        EmbeddingModel(ModelSpec.from_path(bad))
    # the preprocessing is part of the digest: cached embeddings are per choice
    assert len({ModelSpec.from_path(dyn).digest, ModelSpec.from_path(dyn, size=32).digest,
                ModelSpec.from_path(dyn, normalize="clip").digest}) == 3


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_embeddings_match_a_numpy_reference_and_batching(tmp_path, layout):
    path = pool_model(tmp_path / "m.onnx", layout=layout)
    imgs = [scene(s, 40) for s in range(7)]
    batch = None
    for bs in (1, 3, 32):
        model = EmbeddingModel(ModelSpec.from_path(path, batch_size=bs))
        assert (model.height, model.width, model.layout) == (16, 16, layout)
        emb = model.embed(np.stack([model.preprocess(i) for i in imgs]))
        assert emb.shape == (7, 48)
        np.testing.assert_allclose(emb, np.stack([reference(i) for i in imgs]), atol=1e-5)
        if batch is not None:
            np.testing.assert_array_equal(emb, batch)  # the batch size changes nothing
        batch = emb


@pytest.mark.parametrize("fixed", [1, 4])
def test_a_model_exported_with_a_fixed_batch_size_is_fed_that_many(tmp_path, fixed):
    # torch.onnx.export without dynamic_axes fixes the batch at 1: batches of --model-batch failed
    path = pool_model(tmp_path / "m.onnx", batch=fixed)
    imgs = [scene(s, 40) for s in range(7)]
    model = EmbeddingModel(ModelSpec.from_path(path, batch_size=32))
    assert model.fixed_batch == fixed
    emb = model.embed(np.stack([model.preprocess(i) for i in imgs]))
    np.testing.assert_allclose(emb, np.stack([reference(i) for i in imgs]), atol=1e-5)
    assert model.dim == 48


def test_a_model_whose_first_output_is_not_one_vector_per_image_is_refused_by_name(tmp_path):
    # a Hugging Face model exported whole returns its tokens first: (N, 197, 768) would index as
    # 151,296-wide vectors (36 GB at 60,000 images); a (N, C, 1, 1) output is read flattened
    def model(path, out_shape):
        graph = helper.make_graph(
            [helper.make_node("Tile", ["x", "reps"], ["y"])], "tile",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", None, None, None])],
            [helper.make_tensor("reps", TensorProto.INT64, [4], out_shape)])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.save(m, str(path))
        return path
    wide = EmbeddingModel(ModelSpec.from_path(model(tmp_path / "wide.onnx", [1, 12, 1, 3])))  # (N, 36, 16, 48)
    with pytest.raises(InputError, match=r"first output is \(1, 36, 16, 48\), not one embedding"):
        wide.dim
    assert EmbeddingModel(ModelSpec.from_path(model(tmp_path / "small.onnx", [1, 1, 1, 1]))).dim == 3 * 16 * 16


def test_dynamic_input_size_uses_the_given_size(tmp_path):
    path = pool_model(tmp_path / "dyn.onnx", dynamic=True)
    model = EmbeddingModel(ModelSpec.from_path(path, size=24))
    assert (model.height, model.width) == (24, 24)
    assert model.dim == 3 * 6 * 6


def test_bad_model_files_give_clear_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read model"):
        ModelSpec.from_path(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match="cannot load model .*junk.onnx"):
        audit(np.zeros((2, 8, 8, 3), np.uint8), model=junk)


def test_audit_with_model_finds_copies_and_caches_per_model(tmp_path):
    data = tmp_path / "data"
    for s in range(12):
        (data / ("test" if s % 3 == 0 else "train")).mkdir(parents=True, exist_ok=True)
        scene(s, 64).save(data / ("test" if s % 3 == 0 else "train") / f"{s:02d}.jpg", quality=95)
    # a test image that is a re-encoded train image
    Image.open(data / "train" / "01.jpg").save(data / "test" / "copy.jpg", quality=60)
    path = pool_model(tmp_path / "m.onnx")
    only_model = DetectSettings(max_hamming=-1, min_cosine=2.0, model_min_cosine=0.995)
    cache = tmp_path / "cache.sqlite"
    r = audit(data, settings=only_model, model=path, cache=cache, jobs=2)
    pairs = {frozenset((r.manifest.paths[i], r.manifest.paths[j])): k
             for i, j, k in zip(r.pairs.i, r.pairs.j, r.pairs.kind_names())}
    assert pairs == {frozenset(("train/01.jpg", "test/copy.jpg")): "model"}
    assert r.to_dict()["pairs_by_kind"] == {"exact": 0, "hash": 0, "embedding": 0, "model": 1, "keypoint": 0}
    import io

    from rich.console import Console

    from leakscan.report import render_terminal

    buf = io.StringIO()
    render_terminal(r, Console(file=buf, width=200))
    assert "1 duplicate pairs (0 exact, 0 hash, 0 embedding, 1 model)" in buf.getvalue()
    assert r.features.model_embedding.shape == (13, 48)
    assert r.features.n_cached == 0
    again = audit(data, settings=only_model, model=path, cache=cache, jobs=1)
    assert again.features.n_cached == 13
    np.testing.assert_array_equal(again.features.model_embedding, r.features.model_embedding)
    # another model file: its embeddings are computed, not taken from the first model's
    other = pool_model(tmp_path / "m8.onnx", size=8)
    third = audit(data, settings=only_model, model=other, cache=cache, jobs=1)
    assert third.features.n_cached == 0 and third.features.model_embedding.shape == (13, 12)


def test_cli_model_option(tmp_path):
    from typer.testing import CliRunner

    from leakscan.cli import app

    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "test").mkdir()
    scene(1, 64).save(data / "train" / "a.jpg")
    scene(2, 64).save(data / "train" / "b.jpg")
    scene(1, 64).save(data / "test" / "a.png")
    path = pool_model(tmp_path / "m.onnx")
    res = CliRunner().invoke(app, ["audit", str(data), "--model", str(path), "--no-cache", "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["audit", str(data), "--model", str(tmp_path / "nope.onnx"), "--no-cache"])
    assert res.exit_code == 2
    assert "nope.onnx" in res.output
    u8 = pool_model(tmp_path / "u8.onnx", layout="NHWC", dtype="uint8", dynamic=True)
    res = CliRunner().invoke(app, ["audit", str(data), "--model", str(u8), "--model-size", "32x24",
                                   "--model-normalize", "none", "--no-cache", "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    for bad in (["--model-size", "huge"], ["--model-normalize", "zscore"], ["--model-size", "64"]):
        model = path if bad == ["--model-size", "64"] else u8  # the fixed 16x16 model cannot take 64
        res = CliRunner().invoke(app, ["audit", str(data), "--model", str(model), *bad, "--no-cache"])
        assert res.exit_code == 2, (bad, res.output)
    res = CliRunner().invoke(app, ["audit", str(data), "--model-size", "64", "--no-cache"])
    assert res.exit_code == 2 and "need --model" in res.output


def test_a_model_that_cannot_run_stops_with_its_name(tmp_path):
    # a valid graph that fails at run time: 3*16*16 values cannot be reshaped into rows of 5
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 5])
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[shape])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "bad.onnx"))
    with pytest.raises(InputError, match="bad.onnx failed on a batch"):
        audit(np.zeros((2, 8, 8, 3), np.uint8), model=tmp_path / "bad.onnx")


def test_a_model_only_adds_evidence_the_thumbnails_decision_is_a_floor():
    # the decision with the model's cosine, and the one fitted without it: a copy the model does not
    # recognise (low cosine) keeps the confidence the thumbnails give it
    from leakscan.calibrate import THUMBNAILS, Calibration
    from leakscan.decide import Detection
    from leakscan.evidence import EVIDENCE
    from leakscan.pairs import PairTable

    ncc, model = EVIDENCE.index("ncc"), EVIDENCE.index("model")
    thumbs = Calibration(columns=("ncc",), mean=np.zeros(1), scale=np.ones(1), coef=np.array([8.0]),
                         intercept=-4.0, threshold=0.5)
    joint = Calibration(columns=("ncc", "model"), mean=np.zeros(2), scale=np.ones(2), coef=np.array([4.0, 8.0]),
                        intercept=-8.0, threshold=0.5, readings={THUMBNAILS: thumbs})
    x = np.zeros((3, len(EVIDENCE)), np.float32)
    x[:, ncc] = [0.9, 0.9, 0.2]
    x[:, model] = [0.95, 0.1, 0.5]  # a copy it recognises; a copy it does not; a look-alike
    alone = dataclasses.replace(joint, readings={}).predict(x)
    assert alone[1] < 0.5 < thumbs.predict(x)[1]  # the model alone would weigh the copy down
    p = joint.predict(x)
    np.testing.assert_allclose(p, np.maximum(alone, thumbs.predict(x)), rtol=1e-6)
    assert p[0] > 0.9 and p[1] > 0.9 and p[2] < 0.5
    # kept with the search results in the cache
    empty = PairTable.empty()
    back = Detection.from_arrays(Detection(pairs=empty, possible=empty, calibration=joint).to_arrays()).calibration
    np.testing.assert_allclose(back.predict(x), p, rtol=1e-6)
    assert joint.to_dict()[THUMBNAILS]["weights"] == {"ncc": 8.0}


def test_under_its_own_bar_a_model_raises_no_pair():
    # a look-alike the thumbnails leave in doubt, at a model cosine between the look-alikes' and
    # the copies': the fit, which learnt from copies the model knows well, would call it a copy;
    # under --model-min-cosine the thumbnails decide it alone. At or above it, the model raises it.
    from leakscan.calibrate import MODEL_FLOOR, THUMBNAILS, Calibration
    from leakscan.decide import Detection
    from leakscan.evidence import EVIDENCE
    from leakscan.pairs import PairTable

    ncc, model = EVIDENCE.index("ncc"), EVIDENCE.index("model")
    thumbs = Calibration(columns=("ncc",), mean=np.zeros(1), scale=np.ones(1), coef=np.array([8.0]),
                         intercept=-6.0, threshold=0.5)
    joint = Calibration(columns=("ncc", "model"), mean=np.zeros(2), scale=np.ones(2), coef=np.array([4.0, 12.0]),
                        intercept=-8.0, threshold=0.5, readings={THUMBNAILS: thumbs}, stats={MODEL_FLOOR: 0.75})
    x = np.zeros((3, len(EVIDENCE)), np.float32)
    x[:, ncc] = 0.6
    x[:, model] = [0.6, 0.75, 0.9]
    unbarred = dataclasses.replace(joint, stats={}).predict(x)
    assert unbarred[0] > 0.5 > thumbs.predict(x)[0]  # without the bar, the middling cosine tips it over
    p = joint.predict(x)
    np.testing.assert_allclose(p[0], thumbs.predict(x)[0], rtol=1e-6)
    np.testing.assert_allclose(p[1:], unbarred[1:], rtol=1e-6)
    assert p[0] < 0.5 < p[1] < p[2]
    back = Detection.from_arrays(Detection(pairs=PairTable.empty(), possible=PairTable.empty(),
                                           calibration=joint).to_arrays()).calibration
    np.testing.assert_allclose(back.predict(x), p, rtol=1e-6)  # kept with the search results in the cache


def test_an_audit_with_a_model_fits_the_decision_without_it_too(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for s in range(30):
        scene(s, 96).save(data / f"{s:02d}.jpg", quality=95)
    Image.open(data / "03.jpg").resize((80, 80)).save(data / "copy.jpg", quality=70)
    with_model = audit(data, model=pool_model(tmp_path / "m.onnx"), cache=False)
    without = audit(data, cache=False)
    cal = with_model.to_dict()["calibration"]
    assert "model" in cal["weights"] and "model" not in cal["thumbnails"]["weights"]
    assert cal["model_floor"] == 0.75 and "model_floor" not in cal["thumbnails"]  # --model-min-cosine
    assert "thumbnails" not in without.to_dict()["calibration"]
    names = lambda r: {frozenset((r.manifest.paths[i], r.manifest.paths[j])) for i, j in zip(r.pairs.i, r.pairs.j)}  # noqa: E731
    assert frozenset(("03.jpg", "copy.jpg")) in names(without)
    assert names(without) <= names(with_model)


def test_an_embedding_with_nan_or_inf_is_read_as_zeros(tmp_path):
    # a model that gives some images NaN (here: the square root of a negative mean, a dark image
    # after ImageNet's normalisation) poisoned the search: FAISS refuses to train an inverted-file
    # index (over 20,000 images) on NaN or inf and the run ended in a traceback
    from leakscan.index import CosineIndex

    nodes = [helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("ReduceMean", ["f"], ["mu"], axes=[1], keepdims=1),
             helper.make_node("Sqrt", ["mu"], ["s"]), helper.make_node("Mul", ["f", "s"], ["y"])]
    graph = helper.make_graph(nodes, "nan", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", None])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "nan.onnx"))
    model = EmbeddingModel(ModelSpec.from_path(tmp_path / "nan.onnx"))
    imgs = [Image.new("RGB", (40, 40), (0, 0, 0)), Image.new("RGB", (40, 40), (255, 255, 255))]
    imgs += [scene(s, 40) for s in range(60)]
    emb = embed(model, imgs)
    assert np.isfinite(emb).all()
    assert not emb[0].any()  # the black image: no evidence
    np.testing.assert_allclose(np.linalg.norm(emb[1]), 1.0, rtol=1e-5)
    index = CosineIndex(emb, exact_max=10)  # an inverted-file index, as beyond 20,000 images
    sims, ids = index.knn(emb[1:2], 1)
    assert ids[0, 0] == 1


def test_features_decoded_larger_for_a_model_are_cached_beside_the_others(tmp_path):
    # a model of input size over 256 px decodes the images larger (a JPEG of 1100 px at 1/2 rather
    # than 1/4 scale): those features were cached under the file's key, so an audit without the
    # model read them from the cache and differed from the same audit with a cold cache
    data = tmp_path / "data"
    data.mkdir()
    for s in range(3):
        scene(s, 1100).save(data / f"{s}.jpg", quality=90)
    path = pool_model(tmp_path / "m.onnx", dynamic=True)
    cache = tmp_path / "cache.sqlite"
    with_model = audit(data, model=path, model_size=300, cache=cache, jobs=1)
    warm = audit(data, cache=cache, jobs=1)
    cold = audit(data, cache=False, jobs=1)
    assert not np.array_equal(with_model.features.thumb, cold.features.thumb)  # the premise: decoded larger
    for name in ("pixel_digest", "hashes", "thumb", "colour", "embedding"):
        np.testing.assert_array_equal(getattr(warm.features, name), getattr(cold.features, name), err_msg=name)
    again = audit(data, model=path, model_size=300, cache=cache, jobs=1)  # and the model's own stay cached
    assert again.features.n_cached == 3
    np.testing.assert_array_equal(again.features.thumb, with_model.features.thumb)
    np.testing.assert_array_equal(again.features.model_embedding, with_model.features.model_embedding)


@pytest.mark.parametrize("meta, why", [
    ({"leakscan.mean": "a,b,c", "leakscan.std": "1,1,1"}, "metadata leakscan.mean must be three numbers"),
    ({"mean": "0.5,0.5", "std": "1,1,1"}, "metadata mean must be three numbers"),
    ({"leakscan.mean": "0,0,0", "leakscan.std": "nan,nan,nan"}, "three finite numbers"),
    ({"leakscan.mean": "nan,0,0", "leakscan.std": "1,1,1"}, "three finite numbers"),
    ({"leakscan.mean": "0,0,0", "leakscan.std": "inf,1,1"}, "three finite numbers"),
    ({"leakscan.size": "big"}, "metadata leakscan.size must be N or WxH .*, got 'big'"),
])
def test_garbage_mean_or_std_in_the_metadata_is_refused_naming_the_model(tmp_path, meta, why):
    # the mean/std errors did not name the model file, and NaN or inf were taken (every
    # embedding NaN: the model silently gave no evidence)
    from typer.testing import CliRunner

    from leakscan.cli import app

    path = pool_model(tmp_path / "garbage.onnx", dynamic=True, metadata=meta)
    with pytest.raises(InputError, match=rf"model .*garbage.onnx: .*{why}"):
        EmbeddingModel(ModelSpec.from_path(path))
    data = tmp_path / "data"
    data.mkdir()
    scene(1, 32).save(data / "a.png")
    res = CliRunner().invoke(app, ["audit", str(data), "--model", str(path), "--no-cache", "--quiet"])
    assert res.exit_code == 2 and "garbage.onnx" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("args, said", [
    (["--model-size", "0"], "--model-size must be between 1 and 8192 pixels a side, got 0x0"),
    (["--model-size", "big"], "--model-size must be N or WxH (e.g. 224 or 160x128), got 'big'"),
    (["--model-normalize", "zscore"], "--model-normalize must be one of imagenet, clip, none, got 'zscore'"),
    (["--model-batch", "0"], "--model-batch must be a whole number >= 1, got 0"),
])
def test_a_model_option_the_model_cannot_take_is_named_as_the_option(tmp_path, args, said):
    # the line said "model size must be ..." (no such option), and from Python it named no keyword
    from typer.testing import CliRunner

    from leakscan.cli import app

    path = pool_model(tmp_path / "m.onnx", dynamic=True)
    res = CliRunner().invoke(app, ["audit", str(tmp_path), "--model", str(path), *args, "--quiet"])
    assert res.exit_code == 2 and res.output.strip() == f"leakscan: error: {said}", res.output
    keyword = said.split()[0].lstrip("-").replace("-", "_")
    if keyword != "model_batch":  # audit() takes the model's size and normalisation, not its batch
        with pytest.raises(ValueError, match=rf"^{keyword} must be"):
            audit(tmp_path, model=path, cache=False, **{keyword: args[1]})


def test_a_model_that_does_not_take_three_channels_is_told_so(tmp_path):
    # a grey (1-channel) model was told to set metadata leakscan.layout, which cannot help; and a
    # leakscan.layout naming the wrong axis failed at run time on "16x3 images"
    def model(path, shape, metadata=None):
        graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["y"], axis=1)], "flat",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", None])])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        if metadata:
            onnx.helper.set_model_props(m, metadata)
        onnx.save(m, str(path))
        return path
    for shape in (["N", 1, 16, 16], ["N", 16, 16, 1], ["N", 4, 16, 16]):
        with pytest.raises(InputError, match=r"grey.onnx: input 'x' has no 3-channel axis: .*leakscan feeds RGB"):
            EmbeddingModel(ModelSpec.from_path(model(tmp_path / "grey.onnx", shape)))
    # dynamic axes: the layout may say which one is the channels
    with pytest.raises(InputError, match=r"set metadata leakscan.layout"):
        EmbeddingModel(ModelSpec.from_path(model(tmp_path / "dyn.onnx", ["N", "C", "H", "W"])))
    ok = EmbeddingModel(ModelSpec.from_path(model(tmp_path / "dyn.onnx", ["N", "C", "H", "W"],
                                                  {"leakscan.layout": "NHWC"}), size=8))
    assert ok.layout == "NHWC" and ok.dim == 8 * 8 * 3
    wrong = model(tmp_path / "wrong.onnx", ["N", 3, 16, 16], {"leakscan.layout": "NHWC"})
    with pytest.raises(InputError, match=r"wrong.onnx: metadata leakscan.layout says NHWC, but .* has 16 channels"):
        EmbeddingModel(ModelSpec.from_path(wrong))
    grey = model(tmp_path / "greylayout.onnx", ["N", 1, "H", "W"], {"leakscan.layout": "NCHW"})
    with pytest.raises(InputError, match=r"has 1 channels; leakscan feeds RGB"):
        EmbeddingModel(ModelSpec.from_path(grey))


def test_a_fixed_size_model_whose_metadata_says_another_size_is_told_which(tmp_path):
    # the size came from the metadata, yet the error said "drop --model-size" (not given)
    path = pool_model(tmp_path / "fixed.onnx", size=16, metadata={"image_size": "224"})
    with pytest.raises(InputError, match=r"fixed.onnx takes 16x16 images only, not 224x224 "
                                         r"\(its metadata image_size says 224: fix or remove it\)"):
        EmbeddingModel(ModelSpec.from_path(path))
    assert EmbeddingModel(ModelSpec.from_path(path, size=16)).width == 16  # an explicit size wins
    with pytest.raises(InputError, match=r"not 32x32 \(drop --model-size\)"):
        EmbeddingModel(ModelSpec.from_path(path, size=32))


def test_model_options_without_a_model_are_refused_by_the_library_too(tmp_path):
    # the command line refuses --model-size without --model; audit(model_size=...) without
    # model= ran without a model, saying nothing
    from leakscan.errors import ConfigError

    imgs = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ConfigError, match=r"model_size=128 is for a model: give model="):
        audit(imgs, model_size=128)
    with pytest.raises(ConfigError, match=r"model_normalize='clip' is for a model"):
        audit(imgs, model_normalize="clip")
    r = audit(imgs, model=pool_model(tmp_path / "m.onnx", dynamic=True), model_size=8, model_normalize="clip")
    assert r.features.model_embedding.shape == (2, 12)


def test_a_model_whose_output_is_not_per_image_is_refused_by_name(tmp_path):
    # a scalar output, or one reduced over the batch (right for a batch of 1, the probe), ended
    # the run in an IndexError / ValueError traceback with exit code 1 (the code of a leak found)
    from typer.testing import CliRunner

    from leakscan.cli import app

    def model(path, node, out_shape):
        graph = helper.make_graph([node], "reduce", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  ["N", 3, 16, 16])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.save(m, str(path))
        return path
    scalar = model(tmp_path / "scalar.onnx", helper.make_node("ReduceMean", ["x"], ["y"], keepdims=0), [])
    mixed = model(tmp_path / "mixed.onnx", helper.make_node("ReduceMean", ["x"], ["y"], axes=[0, 2, 3], keepdims=0),
                  [3])
    imgs = np.stack([np.asarray(scene(s, 16)) for s in range(4)])
    with pytest.raises(InputError, match=r"scalar.onnx: its first output is \(\) for a batch of 1 images"):
        EmbeddingModel(ModelSpec.from_path(scalar)).dim
    with pytest.raises(InputError, match=r"mixed.onnx: its first output is \(3,\) for a batch of 4 images"):
        EmbeddingModel(ModelSpec.from_path(mixed)).embed(imgs)
    data = tmp_path / "data"
    data.mkdir()
    for s in range(4):
        scene(s, 32).save(data / f"{s}.png")
    res = CliRunner().invoke(app, ["audit", str(data), "--model", str(mixed), "--no-cache", "--quiet", "-j", "1"])
    assert res.exit_code == 2 and "mixed.onnx: its first output is" in res.output, res.output


def test_metadata_mean_and_std_written_for_0_255_pixels_are_read_on_that_scale(tmp_path):
    # 123.675/58.395 (as toolchains that feed 0-255 pixels write them) were applied to 0-1 pixels:
    # every input near -2, every embedding alike, every pair a look-alike
    unit = EmbeddingModel(ModelSpec.from_path(pool_model(tmp_path / "unit.onnx", dynamic=True, metadata={
        "leakscan.mean": "0.485,0.456,0.406", "leakscan.std": "0.229,0.224,0.225"})))
    bytes_scale = EmbeddingModel(ModelSpec.from_path(pool_model(tmp_path / "bytes.onnx", dynamic=True, metadata={
        "mean": "123.675, 116.28, 103.53", "std": "58.395, 57.12, 57.375"})))
    np.testing.assert_allclose(bytes_scale._mean, unit._mean, atol=1e-6)
    np.testing.assert_allclose(bytes_scale._std, unit._std, atol=1e-6)
    images = np.stack([unit.preprocess(scene(k, 32)) for k in range(3)])
    np.testing.assert_allclose(bytes_scale.embed(images), unit.embed(images), atol=1e-5)
    for meta in ({"leakscan.mean": "0.5,0.5,0.5"}, {"std": "0.2,0.2,0.2"}):  # one without the other
        with pytest.raises(InputError, match=r"half.onnx: metadata .* go together"):
            EmbeddingModel(ModelSpec.from_path(pool_model(tmp_path / "half.onnx", dynamic=True, metadata=meta)))


@pytest.mark.parametrize("width", [0, 1, None])
def test_a_model_without_an_embedding_per_image_is_refused_by_name(tmp_path, width):
    # an (N, 0) output gave every image an empty embedding: no model pair, no model evidence, and
    # the run ended with exit 0 as if the model had been heard; an (N,) or (N, 1) output (a score,
    # such as a classifier's logit) normalised to +-1, so every pair had a model cosine of +-1
    from onnx import numpy_helper
    from typer.testing import CliRunner

    from leakscan.cli import app

    nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], axes=[2, 3], keepdims=0),  # (N, 3)
             helper.make_node("Slice", ["mean", "zero", "end", "one"], ["cols"])]  # its columns 0:width
    shape = ["N", width or 1]
    if width is None:  # (N,): the one column squeezed out
        nodes.append(helper.make_node("Squeeze", ["cols", "one"], ["y"]))
        shape = ["N"]
    else:
        nodes[-1].output[0] = "y"
    ints = [numpy_helper.from_array(np.array([v], np.int64), name)
            for name, v in (("zero", 0), ("one", 1), ("end", 1 if width is None else width))]
    graph = helper.make_graph(nodes, "scores", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], initializer=ints)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    path = tmp_path / "scores.onnx"
    onnx.save(m, str(path))
    imgs = np.stack([np.asarray(scene(s, 16)) for s in range(3)])
    shown = {0: r"\(3, 0\), 0 number", 1: r"\(3, 1\), 1 number", None: r"\(3,\), 1 number"}[width]
    with pytest.raises(InputError, match=r"scores.onnx: its first output is " + shown + r"\(s\) per image, not an embedding"):
        EmbeddingModel(ModelSpec.from_path(path)).embed(imgs)
    data = tmp_path / "data"
    for split, s in (("train", 0), ("train", 1), ("test", 0)):
        (data / split).mkdir(parents=True, exist_ok=True)
        scene(s, 32).save(data / split / f"{s}.png")
    res = CliRunner().invoke(app, ["audit", str(data), "--model", str(path), "--no-cache", "--quiet", "-j", "1"])
    assert res.exit_code == 2, res.output
    (line,) = res.output.strip().splitlines()
    assert "scores.onnx: its first output is" in line and "per image, not an embedding" in line
