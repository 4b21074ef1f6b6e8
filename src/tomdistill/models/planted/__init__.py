"""The planted reference teacher: a documented behavioural model of the games (belief about the
coplayer, weight on its payoff, logit choice), served as a model backend (`planted:default`).

params.py reads the parameter file, behaviour.py computes the choice distribution, replies.py
writes sampled replies, backend.py is the Model. docs/planted.md explains the model.
"""
