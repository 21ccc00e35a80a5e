// TODO(helper): dense attention.
