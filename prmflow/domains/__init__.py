"""Problem domains whose truth prmflow can compute itself, without a dataset or a grader.

Each subpackage generates problems and checks solutions step by step (``arith``: generated
arithmetic word problems). Subpackages are pure Python so Beam workers import them cheaply.
"""
