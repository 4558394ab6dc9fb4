import numpy as np
import pytest
import scipy.sparse as sp

from skvidsage._propagation import GraphOperator, label_propagation

_A = sp.csr_matrix(np.array([[0, 2, 0], [1, 0, 1], [0, 0, 0]], dtype=np.float32))


def test_symmetric_operator_of_the_reference_rows():
    op = GraphOperator(_A, "symmetric")
    d = np.array([3.0, 3.0, 1.0])
    expected = (_A.toarray() + np.eye(3)) / np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(op.matrix.toarray(), expected)
    sym = GraphOperator(_A, "symmetric", symmetrize=True)
    np.testing.assert_allclose(sym.degree, [3.0, 4.0, 2.0])  # max(A, A.T)


def test_a_query_row_follows_the_reference_rule():
    op = GraphOperator(_A, "symmetric")
    S_q, s_qq = op.query(_A)  # the reference rows as queries: the same rows
    np.testing.assert_allclose(S_q.toarray() + np.diag(s_qq), op.matrix.toarray())
    # a block given on the columns it links to only
    q = sp.csr_matrix(np.array([[0.5, 1.5]]))
    S_b, s_b = op.query(q, columns=np.array([0, 2]))
    np.testing.assert_allclose(
        S_b.toarray(), [[0.5 / np.sqrt(3 * 3), 1.5 / np.sqrt(3)]]
    )
    np.testing.assert_allclose(s_b, [1 / 3])
    with pytest.raises(ValueError, match="links to 2 reference videos"):
        op.query(q)


def test_mean_operator_and_powers():
    op = GraphOperator(_A, "mean")
    np.testing.assert_allclose(
        op.matrix.toarray(), [[0, 1, 0], [0.5, 0, 0.5], [0, 0, 0]]
    )
    X = np.arange(6.0).reshape(3, 2)
    S1, S2 = op.reference_powers(X, 2)
    np.testing.assert_allclose(S1, op.matrix @ X)
    np.testing.assert_allclose(S2, op.matrix @ S1)
    # queries through the reference rows' powers equal the dense products
    q = sp.csr_matrix(np.array([[1.0, 0, 3.0]]))
    x = np.array([[1.0, -1.0]])
    s1, s2 = op.query_powers(q, x, [X, S1])
    np.testing.assert_allclose(s1, [[0.25 * X[0] + 0.75 * X[2]]][0])
    np.testing.assert_allclose(s2, [[0.25 * S1[0] + 0.75 * S1[2]]][0])


def test_bad_operator_arguments():
    with pytest.raises(ValueError, match="normalization"):
        GraphOperator(_A, "row")
    with pytest.raises(ValueError, match="square"):
        GraphOperator(sp.csr_matrix((2, 3)), "mean")


def test_label_propagation_is_pyg_with_the_operator_weights():
    op = GraphOperator(_A, "mean")
    Y = np.array([[1.0, 0], [0, 1.0], [1.0, 0]])
    out = label_propagation(op, Y, alpha=0.5, n_layers=1, device="cpu")
    np.testing.assert_allclose(
        out, np.clip(0.5 * op.matrix @ Y + 0.5 * Y, 0, 1), rtol=1e-6
    )
    np.testing.assert_array_equal(
        label_propagation(op, Y, alpha=0.5, n_layers=0, device="cpu"), Y
    )
