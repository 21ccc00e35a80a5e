// TODO(helper): combiner_axial attention.
