"""Dataset, training and evaluation code: the train/valid manifest, the PS and placement models'
training loops, the PS-NN table builder and the objective evaluation (E_min, D_F).

Apart from the runtime path: core, separation, app and ui never import it (only the `train` and
`eval` commands do, when they run).
"""
