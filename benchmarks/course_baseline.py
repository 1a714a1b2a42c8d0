"""THE COURSE BASELINE: the deep-learning course's straightforward NumPy network, as students write it.

"Building your Deep Neural Network: Step by Step" + "Planar data classification with one hidden
layer" + the mini-batch loop of "Optimization Methods": parameters in a dict W1, b1, ..., a
forward pass that keeps a cache per layer, compute_cost with np.log, a backward pass layer by
layer, an update loop over the dict, and the cost computed at every iteration (every mini-batch).

Bugs of the notebook versions fixed, so it trains the same model as nncore:
  * dZ[L] = A[L] - Y directly (the planar notebook's form; dAL = -(Y/AL - (1-Y)/(1-AL)) divides by 0
    once a sigmoid saturates), and a softmax output for more than one output unit;
  * tanh' from the cached activation, 1 - A^2 (the planar notebook), instead of recomputing tanh;
  * the initial parameters are passed in, so every implementation starts from the same weights;
  * the cost is clipped away from log(0) (the notebooks return nan/inf once a probability rounds to 0 or 1).
Samples are columns: X (n_x, m), Y (n_y, m).
"""

import numpy as np


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def relu(Z):
    return np.maximum(0, Z)


def softmax(Z):
    E = np.exp(Z - np.max(Z, axis=0, keepdims=True))
    return E / np.sum(E, axis=0, keepdims=True)


def linear_forward(A, W, b):
    Z = np.dot(W, A) + b
    return Z, (A, W, b)


def linear_activation_forward(A_prev, W, b, activation):
    Z, linear_cache = linear_forward(A_prev, W, b)
    A = {"tanh": np.tanh, "relu": relu, "sigmoid": sigmoid, "softmax": softmax}[activation](Z)
    return A, (linear_cache, (Z, A))


def L_model_forward(X, parameters, hidden, output):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A, cache = linear_activation_forward(A, parameters["W" + str(l)], parameters["b" + str(l)], hidden)
        caches.append(cache)
    AL, cache = linear_activation_forward(A, parameters["W" + str(L)], parameters["b" + str(L)], output)
    caches.append(cache)
    return AL, caches


def compute_cost(AL, Y):
    m = Y.shape[1]
    AL = np.clip(AL, 1e-15, 1 - 1e-15)
    if AL.shape[0] == 1:  # binary cross-entropy
        cost = -1 / m * np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))
    else:  # categorical cross-entropy
        cost = -1 / m * np.sum(Y * np.log(AL))
    return float(np.squeeze(cost))


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def activation_backward(dA, activation_cache, activation):
    Z, A = activation_cache
    if activation == "relu":
        dZ = np.array(dA, copy=True)
        dZ[Z <= 0] = 0
        return dZ
    if activation == "tanh":
        return dA * (1 - np.power(A, 2))
    return dA * A * (1 - A)  # sigmoid


def L_model_backward(AL, Y, caches, hidden):
    grads = {}
    L = len(caches)
    dZ = AL - Y  # sigmoid + BCE, or softmax + CCE
    dA_prev, grads["dW" + str(L)], grads["db" + str(L)] = linear_backward(dZ, caches[L - 1][0])
    for l in reversed(range(L - 1)):
        linear_cache, activation_cache = caches[l]
        dZ = activation_backward(dA_prev, activation_cache, hidden)
        dA_prev, grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = linear_backward(dZ, linear_cache)
    return grads


def update_parameters(parameters, grads, learning_rate):
    L = len(parameters) // 2
    for l in range(L):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters


def random_mini_batches(X, Y, mini_batch_size, rng):
    m = X.shape[1]
    permutation = list(rng.permutation(m))
    shuffled_X = X[:, permutation]
    shuffled_Y = Y[:, permutation]
    return [(shuffled_X[:, k:k + mini_batch_size], shuffled_Y[:, k:k + mini_batch_size])
            for k in range(0, m, mini_batch_size)]


def L_layer_model(X, Y, parameters, hidden, output, learning_rate, num_iterations,
                  mini_batch_size=None, seed=0):
    """Full batch (mini_batch_size None) or one epoch of mini-batches per iteration; returns (parameters, costs)."""
    costs = []
    rng = np.random.default_rng(seed)
    for i in range(num_iterations):
        if mini_batch_size is None:
            batches = [(X, Y)]
        else:
            batches = random_mini_batches(X, Y, mini_batch_size, rng)
        cost_total = 0
        for minibatch_X, minibatch_Y in batches:
            AL, caches = L_model_forward(minibatch_X, parameters, hidden, output)
            cost_total += compute_cost(AL, minibatch_Y) * minibatch_X.shape[1]
            grads = L_model_backward(AL, minibatch_Y, caches, hidden)
            parameters = update_parameters(parameters, grads, learning_rate)
        costs.append(cost_total / X.shape[1])
    return parameters, costs
