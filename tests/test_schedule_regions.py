"""Receptive fields, against halos worked out by hand."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from schedule_helpers import graph_from

from hwsim.model.regions import band_rows_read, input_regions, input_rows, rows_read


def _layer(spec: dict, size: int = 8, channels: int = 4):
    return graph_from({"name": "t", "input": [size, size, channels], "layers": [spec]}).layers[0]


def test_a_3x3_same_conv_reads_one_row_of_halo_each_side_clipped_at_the_edges() -> None:
    conv = _layer({"op": "conv", "kernel": 3, "filters": 2, "padding": "same"})
    assert input_regions(conv, (2, 4), (0, 2)) == (((1, 5), (0, 4)),)
    assert input_regions(conv, (0, 1), (0, 2)) == (((0, 2), (0, 4)),)
    assert input_regions(conv, (7, 8), (0, 2)) == (((6, 8), (0, 4)),)


def test_strided_pool_and_depthwise_conv_read_only_their_channels() -> None:
    pool = _layer({"op": "maxpool", "size": 2})
    assert input_regions(pool, (1, 3), (1, 3)) == (((2, 6), (1, 3)),)
    dw = _layer({"op": "dwconv", "kernel": 3, "padding": "same", "stride": 2})
    # output row 1 at stride 2 with padding (0 top, 1 bottom): input rows 2..4
    assert input_regions(dw, (1, 2), (2, 3)) == (((2, 5), (2, 3)),)


def test_global_pool_and_dense_read_everything() -> None:
    gap = _layer({"op": "global_avg_pool"})
    assert input_regions(gap, (0, 1), (1, 2)) == (((0, 8), (1, 2)),)


@given(
    height=st.integers(1, 40),
    kernel=st.integers(1, 4),
    dilation=st.integers(1, 3),
    stride=st.integers(1, 6),
    pad=st.integers(0, 3),
)
def test_rows_read_counts_the_rows_under_any_window_as_listing_them_does(
    height: int, kernel: int, dilation: int, stride: int, pad: int
) -> None:
    """Windows shorter than their stride skip rows (a strided 1x1 conv reads every other row); padding's windows
    read fewer: counted as the set of rows every output row's window covers."""
    extent = (kernel - 1) * dilation + 1
    if height + 2 * pad < extent:
        return  # no output row
    conv = graph_from(
        {
            "name": "t",
            "input": [height, extent, 2],
            "layers": [
                {"op": "conv", "kernel": kernel, "filters": 2, "stride": stride, "padding": pad, "dilation": dilation}
            ],
        }
    ).layers[0]
    covered = {
        row
        for out in range(conv.output_shape[0])
        for row in range(out * stride - pad, out * stride - pad + extent)
        if 0 <= row < height
    }
    assert rows_read(conv) == len(covered)


@given(
    height=st.integers(1, 60),
    kernel=st.integers(1, 5),
    dilation=st.integers(1, 3),
    stride=st.integers(1, 4),
    pad=st.integers(0, 4),
    band=st.integers(1, 12),
    pool=st.booleans(),
)
def test_band_rows_read_adds_up_every_bands_rows_as_listing_the_bands_does(
    height: int, kernel: int, dilation: int, stride: int, pad: int, band: int, pool: bool
) -> None:
    """The bands wholly inside the map are counted at once, the edges one by one: the sum is the bands' own."""
    extent = (kernel - 1) * dilation + 1
    if height + 2 * pad < extent:
        return  # no output row
    window = {"op": "conv", "kernel": kernel, "filters": 2, "dilation": dilation}
    if pool:  # a window without dilation, its padding at most half of it
        window, pad = {"op": "maxpool", "size": kernel}, min(pad, kernel // 2)
        extent = kernel
    layer = graph_from(
        {"name": "t", "input": [height, extent, 2], "layers": [{**window, "stride": stride, "padding": pad}]}
    ).layers[0]
    bands = range(0, layer.output_shape[0], band)
    listed = sum(hi - lo for lo, hi in (input_rows(layer, (b, min(b + band, layer.output_shape[0])))[0] for b in bands))
    assert band_rows_read(layer, band) == listed
