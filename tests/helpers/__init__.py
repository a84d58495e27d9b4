"""Helpers the tests share: lab fixtures, fake services, hand-built inputs.

Importable as `helpers.<module>` because pyproject's pytest settings put tests/ on the path;
no test edits sys.path.
"""
