import networkx as nx
import pytest

from scm import SCM
from scm.graph import as_parent_dict, descendants


def test_three_graph_forms_agree():
    as_dict = as_parent_dict({"a": [], "b": ["a"], "c": ["a", "b"]})
    as_edges = as_parent_dict([("a", "b"), ("a", "c"), ("b", "c")])
    as_nx = as_parent_dict(nx.DiGraph([("a", "b"), ("a", "c"), ("b", "c")]))
    assert as_dict == as_edges == as_nx == {"a": [], "b": ["a"], "c": ["a", "b"]}


def test_topological_order_even_when_declared_out_of_order():
    parents = as_parent_dict({"y": ["x"], "x": []})
    assert list(parents) == ["x", "y"]


def test_descendants():
    parents = as_parent_dict({"a": [], "b": ["a"], "c": ["b"], "d": []})
    assert descendants(parents, ["a"]) == {"b", "c"}
    assert descendants(parents, ["d"]) == set()


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ({"a": ["b"], "b": ["a"]}, "cyclic"),
        ([("a", "b"), ("b", "c"), ("c", "a")], "cyclic: "),
        ({"a": ["a"]}, "self-loop on node 'a'"),
        ({"a": [], "b": ["z"]}, "parent 'z' of node 'b' is not declared"),
        ({}, "no nodes"),
    ],
)
def test_bad_graphs_name_the_problem(graph, message):
    with pytest.raises(ValueError, match=message):
        SCM(graph, mechanisms="linear")


def test_parents_as_string_is_a_type_error():
    with pytest.raises(TypeError, match="list of node names"):
        as_parent_dict({"a": [], "b": "a"})


def test_node_names_must_be_identifiers():
    with pytest.raises(ValueError, match="not an identifier"):
        SCM({"a b": []}, mechanisms="linear")
