"""Imports between the units of the code (sub-packages of reformer_keras, its top-level modules,
the front ends) follow the table of docs/layout.md, and form no cycle. AST-based: every
`import` / `from ... import` of every module, at module level or inside functions."""
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
FRONT_ENDS = ("trainers", "exports", "benchmarks")


def unit_of(module):
    """"reformer_keras.layers.lsh_attention" -> "reformer_keras.layers"; top-level modules of
    reformer_keras are units of their own; front ends are one unit each; others None."""
    parts = module.split(".")
    if parts[0] in FRONT_ENDS:
        return parts[0]
    if parts[0] != "reformer_keras":
        return None
    if len(parts) == 1:
        return "reformer_keras"
    return "reformer_keras." + parts[1]


def read_rules(text):
    """{unit: set of units it may import} from the markdown table of docs/layout.md."""
    rules = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        rules[cells[0].strip("`")] = set(re.findall(r"`([\w.]+)`", cells[2]))
        if "every `reformer_keras` unit" in cells[2]:
            rules[cells[0].strip("`")].add("*library*")
    return rules


def module_of(path, root):
    """reformer_keras/layers/__init__.py -> "reformer_keras.layers"."""
    module = ".".join(path.relative_to(root).with_suffix("").parts)
    return module[:-len(".__init__")] if module.endswith(".__init__") else module


def imports(root=ROOT):
    """[(importing unit, imported unit, file:line)] between different units."""
    found = []
    for top in ("reformer_keras",) + FRONT_ENDS:
        for path in sorted((root / top).rglob("*.py")):
            module = module_of(path, root)
            source = unit_of(module)
            package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:  # relative import
                        base = ".".join(package.split(".")[:len(package.split(".")) -
                                                            node.level + 1] + [base]).strip(".")
                    names = [f"{base}.{a.name}" for a in node.names]
                else:
                    continue
                for name in names:
                    target = unit_of(name)
                    if target and target != source:
                        found.append((source, target, f"{path.relative_to(root)}:{node.lineno}"))
    return found


def violations(found, rules):
    library = {u for u in rules if u.startswith("reformer_keras")}
    bad = []
    for source, target, where in found:
        allowed = rules.get(source)
        if allowed is None:
            bad.append(f"{where}: unit {source} has no row in docs/layout.md")
        elif target not in allowed and not ("*library*" in allowed and target in library):
            bad.append(f"{where}: {source} may not import {target}")
    return bad


def cycles(found):
    graph = {}
    for source, target, _ in found:
        graph.setdefault(source, set()).add(target)
    out, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                out.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return out


RULES = read_rules((ROOT / "docs" / "layout.md").read_text())


def test_layout_table_covers_every_unit():
    units = {unit_of(module_of(p, ROOT))
             for top in ("reformer_keras",) + FRONT_ENDS for p in (ROOT / top).rglob("*.py")}
    assert units - set(RULES) == set()
    assert RULES["reformer_keras.layers"] <= {  # layers: no models, data, training, ...
        "reformer_keras.input_checks", "reformer_keras.config", "reformer_keras.runtime"}
    library = [u for u in RULES if u.startswith("reformer_keras")]
    assert all(not RULES[u] & set(FRONT_ENDS) for u in library)


def test_imports_follow_the_layout_table():
    assert violations(imports(), RULES) == []


def test_no_cycles_between_units():
    assert cycles(imports()) == []


def test_a_forbidden_import_is_caught(tmp_path):
    """The checker itself: a layer importing a model, and the cycle it makes, are reported."""
    for top in ("reformer_keras",) + FRONT_ENDS:
        for path in (ROOT / top).rglob("*.py"):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text())
    bad = tmp_path / "reformer_keras" / "layers" / "pre_norm.py"
    bad.write_text(bad.read_text() + "\n\ndef _f():\n    from reformer_keras.models import "
                                     "ReformerLM\n    return ReformerLM\n")
    found = imports(tmp_path)
    assert violations(found, RULES) == [
        f"reformer_keras/layers/pre_norm.py:{len(bad.read_text().splitlines()) - 1}: "
        "reformer_keras.layers may not import reformer_keras.models"]
    assert any("reformer_keras.layers -> reformer_keras.models" in c or
               "reformer_keras.models -> reformer_keras.layers" in c for c in cycles(found))
