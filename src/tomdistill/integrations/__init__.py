"""Adapters that put tomdistill agents into other frameworks' simulations.

Each module here imports its framework at the top and needs that framework's extra (`concordia_lm`:
`pip install 'tomdistill[concordia]'`). Nothing else in tomdistill imports this package, so
`import tomdistill` never loads a simulation framework (tests/test_architecture.py checks it).
"""
