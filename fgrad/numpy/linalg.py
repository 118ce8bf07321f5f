"""(being written) fgrad.numpy.linalg"""
