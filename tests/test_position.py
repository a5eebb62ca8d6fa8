"""Whole-plan inference on plain data: where an app's schema stands, whatever the rows say."""

from __future__ import annotations

from migration_doctor.expected import MigrationEffect, Obj
from migration_doctor.position import BEFORE, infer_positions

TABLE: Obj = ("table", "shop_box")
STOCK: Obj = ("column", "shop_box", "stock")
QUANTITY: Obj = ("column", "shop_box", "quantity")
NOTE: Obj = ("column", "shop_box", "note")


def effect(name: str, creates=(), removes=()) -> MigrationEffect:
    return MigrationEffect(("shop", name), name == "0001", list(creates), list(removes))


PLAN = {
    "0001": effect("0001", creates=[TABLE]),
    "0002": effect("0002"),  # RunPython: nothing checkable
    "0003": effect("0003", creates=[STOCK]),
    "0004": effect("0004", creates=[QUANTITY], removes=[STOCK]),  # RenameField
}


def position(live: set[Obj], applied: list[str], plan=PLAN):
    keys = [("shop", n) for n in plan]
    effects = {("shop", n): e for n, e in plan.items()}
    return infer_positions(keys, effects, {("shop", n) for n in applied}, live.__contains__)[
        "shop"
    ]


def test_rows_and_schema_agree():
    p = position({TABLE, STOCK}, ["0001", "0002", "0003"])
    assert p.agrees and p.rows == "0003" and p.mismatches == 0 and p.shown == ()


def test_a_later_migration_done_by_hand():
    p = position({TABLE, QUANTITY}, ["0001", "0002", "0003"])
    assert (p.rows, p.schema, p.mismatches, p.shown) == ("0003", ("0004",), 0, ("0004",))
    assert p.through == ("0004",)
    assert p.describe() == "schema matches shop up to 0004; rows say 0003"


def test_migrations_without_checkable_effect_do_not_make_positions_ambiguous():
    p = position({TABLE}, ["0001"])
    assert p.agrees and p.schema == ("0001",)  # 0002 (RunPython) cannot be told apart
    p = position({TABLE}, ["0001", "0002"])
    assert p.agrees and p.schema == ("0002",)


def test_rows_ahead_of_the_schema():
    p = position({TABLE}, ["0001", "0002", "0003", "0004"])
    assert p.rows == "0004" and p.schema == ("0002",) and not p.ambiguous
    assert p.through == ()  # the rows are ahead: missing-schema, not a position to move to


def test_nothing_applied_nothing_present():
    p = position(set(), [])
    assert p.agrees and p.rows == BEFORE


def test_two_positions_that_fit_equally_well_are_ambiguous():
    plan = {
        "0001": effect("0001", creates=[TABLE]),
        "0002": effect("0002", creates=[STOCK]),
        "0003": effect("0003", creates=[NOTE], removes=[STOCK]),
    }
    # stock present and note present: 0002 misses note, 0003 has stock too much.
    p = position({TABLE, STOCK, NOTE}, ["0001"], plan)
    assert p.ambiguous and p.schema == ("0002", "0003") and p.shown == ()
    assert "equally well" in p.describe()


def test_a_later_migration_half_done_by_hand_moves_the_position_without_showing_it():
    plan = {**PLAN, "0004": effect("0004", creates=[QUANTITY, NOTE], removes=[STOCK])}
    p = position({TABLE, QUANTITY}, ["0001", "0002", "0003"], plan)
    assert (p.schema, p.through, p.shown, p.mismatches) == (("0004",), ("0004",), (), 1)


def test_a_column_dropped_by_hand_puts_the_schema_behind_the_rows():
    # The schema fits 0002 exactly; behind the rows, nothing moves forward: 0003 is recorded
    # and its column is missing (missing-schema), not a position to repair towards.
    p = position({TABLE}, ["0001", "0002", "0003"])
    assert p.schema == ("0002",) and p.through == () and p.rows == "0003"


def test_names_a_renamed_migration_keeps():
    from migration_doctor.classify import _same_migration_name as same

    assert same("0004_auto_20240101_1200", "0004_product_barcode")
    assert same("0004_barcode", "0005_barcode")  # renumbered by a rebase
    assert not same("0009_gone", "0003_product_sku_stock")
    assert not same("initial", "0001_initial")
