"""Operators that move data but compute nothing, and operators that cost nothing at all.

Data movement (copies, concatenation, padding, gathers, tensor creation) has 0 FLOPs; its
traffic is what it reads and writes. Gathers (embedding, index_select, gather, advanced
indexing) read only the rows they pick, not the whole table; creation ops only write.

Free operators move no data: views (``view``, ``permute``, ``transpose``, ``expand``,
``select``, ``slice``, ``split``... any operator whose schema says its output aliases its
input is recognised as a view by the tracer), shape and metadata queries, and allocation
without initialisation (``empty``).
"""

from __future__ import annotations

import math

import torch

from ..costs import TensorMeta, Work, outputs
from ..registry import register, register_free

#: Copies that only change memory layout (``contiguous()``, a reshape or permute that
#: copies, a broadcast made real): kind ``"layout"``, which a compiling runtime never runs.
LAYOUT_COPIES = ("clone", "lift_fresh_copy", "alias_copy", "view_copy", "permute_copy",
                 "expand_copy", "t_copy", "transpose_copy", "unsqueeze_copy", "squeeze_copy",
                 "detach_copy")


@register(*LAYOUT_COPIES, op_class="data")
def layout_copy(**_: object) -> Work:
    """Reads its input and writes its copy (the default traffic), computes nothing."""
    return Work(op_class="data", kind="layout")


@register(
    "_to_copy", "cat", "stack", "constant_pad_nd", "reflection_pad1d",
    "reflection_pad2d", "reflection_pad3d", "replication_pad1d", "replication_pad2d",
    "replication_pad3d", "flip", "roll", "repeat", "tril", "triu", "narrow_copy",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle", "im2col",
    "col2im", "slice_copy", "select_copy", "slice_scatter", "select_scatter",
    "diagonal_scatter", "as_strided_scatter", "masked_scatter", "index_copy", "index_copy_",
    "index_fill", "index_fill_",
    "_local_scalar_dense", "is_nonzero",
    "repeat_interleave", "_copy_from", "_copy_from_and_resize", "unfold_copy",
    # backward of views: a zero gradient of the input's shape with the output's copied in
    "select_backward", "slice_backward", "diagonal_backward", "unfold_backward",
    op_class="data",
)
def copy_like(**_: object) -> Work:
    """Reads its inputs and writes its outputs (the default traffic), computes nothing."""
    return Work(op_class="data")


@register("copy_", op_class="data")
def copy_(self: TensorMeta, src: TensorMeta, **_: object) -> Work:
    return Work(reads=(src,), writes=(self,))


@register(
    "zeros", "ones", "full", "scalar_tensor", "arange", "linspace", "logspace", "eye",
    "zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full", "rand",
    "randn", "randint", "randperm", "rand_like", "randn_like", "randint_like", "normal",
    "normal_", "uniform_", "random_", "exponential_", "cauchy_", "log_normal_", "geometric_",
    "fill", "fill_", "zero_", "bernoulli_", "bernoulli",
    op_class="data",
)
def create(*, result: object, **_: object) -> Work:
    """Tensor creation and filling: writes its output, reads nothing it computes from."""
    return Work(reads=(), writes=outputs(result))


def _gathered(table: TensorMeta, out: TensorMeta) -> TensorMeta:
    return TensorMeta(out.shape, table.dtype)


@register("embedding", op_class="data")
def embedding(weight: TensorMeta, indices: TensorMeta, *, result: TensorMeta,
              **_: object) -> Work:
    # reads the indices and the rows they select, not the whole table
    return Work(reads=(indices, _gathered(weight, result)), writes=(result,))


@register("index_select", "gather", op_class="data")
def index_select(self: TensorMeta, index: TensorMeta, *, result: TensorMeta,
                 **_: object) -> Work:
    return Work(reads=(index, _gathered(self, result)), writes=(result,))


@register("index", "_unsafe_index", op_class="data")
def index(self: TensorMeta, indices: list[TensorMeta | None], *, result: TensorMeta,
          **_: object) -> Work:
    picked = tuple(i for i in indices if isinstance(i, TensorMeta))
    return Work(reads=(*picked, _gathered(self, result)), writes=(result,))


@register("_pack_padded_sequence", op_class="data")
def pack_padded_sequence(lengths: TensorMeta, *, result: tuple[TensorMeta, ...],
                         **_: object) -> Work:
    """Packs the steps each sequence runs into ``data`` (rows, features): reads those rows
    of the padded input, not its padding, and the lengths (int64); writes ``data`` and one
    batch size per step (int64). 0 FLOPs."""
    data, batch_sizes = outputs(result)
    return Work(reads=(data, lengths), writes=(data, batch_sizes))


@register("_pad_packed_sequence", op_class="data")
def pad_packed_sequence(**_: object) -> Work:
    """Unpacks ``data`` into a padded (steps, batch, features) tensor: reads ``data`` and
    the batch sizes, writes the whole padded tensor (its padding filled) and the lengths
    (the default traffic). 0 FLOPs."""
    return Work(op_class="data")


@register("scatter_add", "scatter_add_", "scatter_reduce", "scatter_reduce_",
          op_class="elementwise")
def scatter_add(index: TensorMeta, **_: object) -> Work:
    # one add (or reduce) per element of index: src values outside index's shape are unused
    return Work(elementwise=index.numel)


@register("scatter", "scatter_", op_class="data")
def scatter(index: TensorMeta, reduce: str | None = None, **_: object) -> Work:
    # a copy per element of index; with reduce="add"/"multiply", also one operation each
    if reduce is None:
        return Work(op_class="data")
    return Work(elementwise=index.numel, op_class="elementwise")


@register("index_add", "index_add_", op_class="elementwise")
def index_add(source: TensorMeta, **_: object) -> Work:
    # one add per element of source (index picks a slice of x for each slice of source)
    return Work(elementwise=source.numel)


@register("index_put", "index_put_", op_class="data")
def index_put(self: TensorMeta, indices: list[TensorMeta | None], values: TensorMeta,
              accumulate: bool, **_: object) -> Work:
    """A copy of values into self[indices]; with ``accumulate=True`` (``index_put_(...,
    accumulate=True)``, the backward of indexing) one add per position written: the
    broadcast index shape times the dimensions no index covers. A boolean mask selects a
    number of positions only its values know; then ``values`` (one per selected position,
    unless broadcast) is the count."""
    if not accumulate:
        return Work(op_class="data")
    picked = [i for i in indices if isinstance(i, TensorMeta)]
    if any(i.dtype == torch.bool for i in picked):
        return Work(elementwise=values.numel, op_class="elementwise")
    free = self.shape[len(indices):] + tuple(
        s for s, i in zip(self.shape, indices, strict=False) if i is None)
    positions = math.prod(torch.broadcast_shapes(*(i.shape for i in picked))) * math.prod(free)
    return Work(elementwise=positions, op_class="elementwise")


register_free(
    "prim.device", "prim.layout", "_unsafe_view", "unsafe_split", "unsafe_split_with_sizes",
    "unsafe_chunk", "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided",
    "empty_permuted", "resize_", "resize_as_", "sym_size", "sym_stride", "sym_numel",
    "sym_storage_offset", "size", "stride", "dim", "numel", "storage_offset", "is_contiguous",
    "is_strides_like_format", "is_non_overlapping_and_dense", "sym_is_contiguous",
    "is_same_size", "_assert_async", "_assert_tensor_metadata", "_assert_scalar",
    "sym_constrain_range", "sym_constrain_range_for_size", "_functional_sym_constrain_range",
    "lift_fresh", "set_", "record_stream", "_has_compatible_shallow_copy_type",
    "result_type", "_nested_tensor_size",
    # in-place ops that change only a tensor's metadata
    "transpose_", "t_", "squeeze_", "unsqueeze_", "as_strided_", "swapdims_", "swapaxes_",
    "detach_", "resize_as_sparse_",
)
