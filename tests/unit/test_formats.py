"""The shared table model and its renderers: every format shows the same cells, and
data cannot break out of the cell it lands in (Markdown pipes and newlines, HTML tags,
spreadsheet formulas, terminal escape sequences)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from churnkit.render.formats import Column, Facts, Kind, Table, table_csv
from churnkit.render.html import Html, h, html_facts, html_table, page
from churnkit.render.markdown import markdown_facts, markdown_image, markdown_table, md
from churnkit.render.terminal import clean, rich_facts, rich_table

SCRIPT = "<script>alert(1)</script>"
FORMULA = '=cmd|" /C calc"!A0'
ESCAPES = "\x1b[2J\x1b[31mred\x07\x9b"


def table(*rows: tuple[object, ...], **kwargs: object) -> Table:
    columns = (
        Column("customer", name="customer_id"),
        Column("customers", Kind.COUNT),
        Column("cost", Kind.MONEY),
        Column("p churn", Kind.PERCENT, name="p_churn"),
    )
    return Table("Customers", columns, tuple(rows), **kwargs)  # type: ignore[arg-type]


def terminal(renderable: object, width: int = 80) -> str:
    console = Console(width=width, no_color=True, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


# --- the model --------------------------------------------------------------------------


def test_numbers_are_written_the_columns_way_and_missing_is_a_dash():
    t = table(("C1", 1234, 1234.5, 0.1234), ("C2", None, float("nan"), None))
    assert t.texts() == [["C1", "1,234", "1,234.50", "12.3%"], ["C2", "—", "—", "—"]]


def test_digits_and_text_cells_are_kept():
    column = Column("value", Kind.MONEY, digits=0)
    assert column.text(1234.56) == "1,235"
    assert column.text("n/a") == "n/a"
    assert Column("days", Kind.NUMBER, digits=1).text(2.25) == "2.2"


def test_numbers_align_right_and_do_not_wrap_text_does():
    number, text = Column("n", Kind.COUNT), Column("name")
    assert (number.alignment.value, number.wraps) == ("right", False)
    assert (text.alignment.value, text.wraps) == ("left", True)


def test_a_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="3 cells, not 4"):
        table(("C1", 1, 2.0))


def test_fitted_columns_are_as_wide_as_their_widest_cell():
    fitted = table(("a-long-customer-id", 1, 2.0, 0.5)).fitted()
    assert [c.min_width for c in fitted.columns] == [18, 1, 4, 5]


# --- Markdown ---------------------------------------------------------------------------


def test_markdown_cells_cannot_split_the_row_or_the_table():
    lines = markdown_table(table(("a | b\nc", 1, 2.0, 0.5)))
    assert lines[0] == "| customer | customers | cost | p churn |"
    assert lines[1] == "| --- | ---: | ---: | ---: |"
    assert lines[2] == "| a \\| b c | 1 | 2.00 | 50.0% |"
    assert len(lines) == 3


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        (SCRIPT, "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("[click](http://x)", "\\[click\\](http://x)"),
        ("**bold** `code` ~~gone~~", "\\*\\*bold\\*\\* \\`code\\` \\~\\~gone\\~\\~"),
        ("back\\slash", "back\\\\slash"),
        ("_emphasis_ but at_risk", "\\_emphasis\\_ but at_risk"),
        ("  two\n\nlines\t", "two lines"),
    ],
)
def test_markdown_escaping(raw, escaped):
    assert md(raw) == escaped


@given(st.text())
def test_no_markdown_cell_holds_a_bare_pipe_newline_or_tag(value):
    cell = md(value)
    assert "\n" not in cell and "<" not in cell and ">" not in cell
    assert not re.search(r"(?<!\\)(\\\\)*\|", cell)


def test_markdown_empty_table_says_so_and_keeps_its_caption():
    lines = markdown_table(table(empty="No customers | none.", caption="all of them"))
    assert lines[2:] == ["", "No customers \\| none.", "", "all of them"]


def test_markdown_facts_and_image_links():
    facts = markdown_facts(Facts("About", (("  indented", "a|b"),)))
    assert facts == ["| measure | value |", "| --- | --- |", "| indented | a\\|b |"]
    assert (
        markdown_image("a [b]", "my files/x (1).png") == "![a \\[b\\]](my%20files/x%20%281%29.png)"
    )


# --- HTML -------------------------------------------------------------------------------


def test_html_escapes_every_cell_header_caption_and_fact():
    t = Table(
        SCRIPT,
        (Column(SCRIPT), Column("n", Kind.COUNT)),
        ((SCRIPT, 1),),
        caption=SCRIPT,
    )
    text = "\n".join(html_table(t) + html_facts(Facts("f", ((SCRIPT, SCRIPT),))))
    assert "<script" not in text
    assert text.count("&lt;script&gt;") == 5
    assert '<td class="num">1</td>' in text


def test_html_markup_cells_marks_and_empty_tables():
    t = Table(
        "t",
        (Column("tag"), Column("n", Kind.COUNT)),
        ((Html("<b>ok</b>"), 1), ("<b>no</b>", 2)),
        marks=("control", ""),
    )
    lines = html_table(t)
    assert "<td><b>ok</b></td>" in lines and "<td>&lt;b&gt;no&lt;/b&gt;</td>" in lines
    assert '<tr class="control">' in lines and "<tr>" in lines
    assert html_table(Table("t", t.columns, (), empty="Nothing <here>.")) == [
        "<p>Nothing &lt;here&gt;.</p>"
    ]


def test_a_page_is_self_contained_and_allows_no_scripts():
    text = page(SCRIPT, [f"<p>{h(SCRIPT)}</p>"])
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text
    assert "default-src 'none'" in text


# --- CSV --------------------------------------------------------------------------------


def test_csv_escapes_formulas_and_keeps_numbers_as_numbers():
    text = table_csv(table((FORMULA, 1234, 2.5, 0.25), ("@SUM(A1)", None, None, None)))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["customer_id", "customers", "cost", "p_churn"]
    assert rows[0] == {
        "customer_id": "'" + FORMULA,
        "customers": "1234",
        "cost": "2.5",
        "p_churn": "0.25",
    }
    assert rows[1] == {"customer_id": "'@SUM(A1)", "customers": "", "cost": "", "p_churn": ""}


def test_csv_text_cells_in_a_number_column_are_written_as_shown():
    t = Table("t", (Column("days", Kind.NUMBER, digits=1),), (("—",), (2.25,)))
    assert table_csv(t).splitlines() == ["days", "—", "2.2"]


# --- terminal ---------------------------------------------------------------------------


def test_terminal_cells_show_control_characters_visibly_and_are_not_markup():
    t = table((ESCAPES + " [bold]x[/bold]", 1, 2.0, 0.5))
    text = terminal(rich_table(t))
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "\\x1b[2J\\x1b[31mred" in text.replace("\n", "")
    assert "[bold]x[/bold]" in text


def test_terminal_facts_are_cleaned_too():
    for boxed in (False, True):
        text = terminal(rich_facts(Facts("About [x]", (("key", ESCAPES),)), boxed=boxed))
        assert "\x1b" not in text and "About [x]" in text and "[2J\\x1b[31mred" in text


def test_terminal_empty_table_shows_the_empty_sentence():
    assert "No customers." in terminal(rich_table(table(empty="No customers.")))


@given(st.text())
def test_clean_leaves_no_control_character(value):
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", clean(value))


def test_every_format_shows_the_same_cells():
    t = table(("C1", 1234, 1234.5, 0.1234))
    shown = ["C1", "1,234", "1,234.50", "12.3%"]
    assert all(cell in terminal(rich_table(t), 120) for cell in shown)
    assert markdown_table(t)[2] == "| " + " | ".join(shown) + " |"
    assert all(f">{cell}</td>" in "\n".join(html_table(t)) for cell in shown)
