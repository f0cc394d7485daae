"""Eyeriss v1's published per-layer figures, typed once for benchmarks/eyeriss.py and tests/test_rowstationary.py:
Chen et al., IEEE JSSC 52(1), 2017, Tables III, V and VI, as transcribed by FODLAM (github.com/cucapra/fodlam,
raw/eyeriss-table*.txt and data/eyeriss-*.csv)."""

# Table V: power (mW), total and processing latency (ms), zeros in the layer's ifmaps, global buffer and DRAM
# accesses (MB), for a batch of 4.
TABLE_V = {
    "conv1": (332, 20.9, 16.5, 0.0001, 18.5, 5.0),
    "conv2": (288, 41.9, 39.2, 0.387, 77.6, 4.0),
    "conv3": (266, 23.6, 21.3, 0.725, 50.2, 3.0),
    "conv4": (235, 18.4, 16.0, 0.793, 37.4, 2.1),
    "conv5": (236, 10.5, 10.0, 0.776, 24.9, 1.3),
}
# Table V's active PEs (AlexNet) and Table III's mapping (e, p, q, r, t, n, m).
ACTIVE_PES = {"conv1": 154, "conv2": 135, "conv3": 156, "conv4": 156, "conv5": 156}
TABLE_III = {
    "conv1": (7, 16, 1, 1, 2, 1, 96),
    "conv2": (27, 16, 2, 1, 1, 1, 64),
    "conv3": (13, 16, 4, 1, 4, 4, 64),
    "conv4": (13, 16, 3, 2, 2, 4, 64),
    "conv5": (13, 16, 3, 2, 2, 4, 64),
}
# Table VI (VGG-16, batch 3): power (mW), MACs (G), processing latency (ms), active PEs and global buffer accesses
# (MB) of every conv layer. FODLAM's OCR (raw/eyeriss-tableVI.txt) reads conv5_1's PEs as "163 (100%)": 168, as the
# percentage and conv5_2 and conv5_3 say.
TABLE_VI = {
    "conv1_1": (247, 0.26, 38.0, 156, 112.5),
    "conv1_2": (218, 5.55, 810.6, 156, 2402.8),
    "conv2_1": (242, 2.77, 405.3, 156, 1201.4),
    "conv2_2": (231, 5.55, 810.8, 156, 2402.8),
    "conv3_1": (254, 2.77, 204.0, 156, 607.4),
    "conv3_2": (235, 5.55, 408.1, 156, 1214.8),
    "conv3_3": (233, 5.55, 408.1, 156, 1214.8),
    "conv4_1": (278, 2.77, 105.1, 168, 321.3),
    "conv4_2": (261, 5.55, 210.0, 168, 643.7),
    "conv4_3": (240, 5.55, 210.0, 168, 643.7),
    "conv5_1": (258, 1.39, 48.3, 168, 90.0),
    "conv5_2": (236, 1.39, 48.5, 168, 90.0),
    "conv5_3": (230, 1.39, 48.5, 168, 90.0),
}
# Table VI, every conv layer (VGG-16, batch 3): zeros in the layer's ifmaps and DRAM accesses (MB), as FODLAM's
# data/eyeriss-vgg16.csv gives them (its OCR of the table, raw/eyeriss-tableVI.txt, reads conv4_1's zeros as
# "(74.3%"; the csv's 64.3 % is used).
VGG_ZEROS_AND_DRAM = {
    "conv1_1": (0.016, 15.4),
    "conv1_2": (0.477, 54.0),
    "conv2_1": (0.248, 33.4),
    "conv2_2": (0.387, 48.5),
    "conv3_1": (0.397, 20.2),
    "conv3_2": (0.581, 32.2),
    "conv3_3": (0.587, 30.8),
    "conv4_1": (0.643, 17.8),
    "conv4_2": (0.747, 28.6),
    "conv4_3": (0.854, 22.8),
    "conv5_1": (0.794, 6.3),
    "conv5_2": (0.874, 5.7),
    "conv5_3": (0.885, 5.6),
}
