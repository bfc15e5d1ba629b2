#!/usr/bin/env python3
"""Writes tests/fixtures/holidays-2025-2030.json from the Python package `holidays`.

The fixture is the reference that tests/calendar_crosscheck.rs compares the calendars in
workflows/calendars/ with. Run it again (and review the diff) when upgrading `holidays`:

    pip install holidays==0.109
    python3 scripts/gen_holiday_fixture.py

Canada: the package's `government` category is the Canada Labour Code's general holidays
(federally regulated workplaces); together with `public` it is the closest call to the
federal public service, which also has Easter Monday and the Civic Holiday. The test lists
those two as explicit exceptions.
"""

import json
import pathlib

import holidays

MEMBERS = ["BZ", "CA", "CR", "DO", "SV", "GT", "HN", "MX", "NI", "PA", "US"]
YEARS = list(range(2025, 2031))
# Extra arguments per country; every other country uses its default (public) category.
CALLS = {"CA": {"categories": ("public", "government")}}

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "holidays-2025-2030.json"


def main() -> None:
    countries = {}
    calls = {}
    for code in MEMBERS:
        kwargs = dict(CALLS.get(code, {}))
        cls = holidays.country_holidays(code).__class__
        for cat in kwargs.get("categories", ()):
            if cat not in cls.supported_categories:
                raise SystemExit(f"{code}: category {cat!r} not in {cls.supported_categories}")
        if "en_US" in (getattr(cls, "supported_languages", ()) or ()):
            kwargs["language"] = "en_US"
        h = holidays.country_holidays(code, years=YEARS, **kwargs)
        calls[code] = "holidays.country_holidays(%r, years=range(2025, 2031)%s)" % (
            code,
            "".join(f", {k}={v!r}" for k, v in kwargs.items()),
        )
        per_year = {}
        for year in YEARS:
            per_year[str(year)] = [
                {"date": d.isoformat(), "name": name}
                for d, name in sorted(h.items())
                if d.year == year
            ]
        countries[code] = per_year
    doc = {
        "generator": "scripts/gen_holiday_fixture.py",
        "package": "holidays",
        "holidays_version": holidays.__version__,
        "years": YEARS,
        "calls": calls,
        "countries": countries,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT} (holidays {holidays.__version__})")


if __name__ == "__main__":
    main()
