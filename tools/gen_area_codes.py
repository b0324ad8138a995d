#!/usr/bin/env python3
"""Generate crates/assent-core/data/area_codes.tsv: NANP area code -> region + IANA time zones.

Source: libphonenumber offline data as shipped in the PyPI package `phonenumbers`
(Apache-2.0): `phonenumbers.tzdata` (time zones), `phonenumbers.geodata`
(English geocoder descriptions) and the per-region metadata (leading digits of
the non-US NANP regions).

Usage (from the repo root):
    pip install phonenumbers
    python3 tools/gen_area_codes.py > crates/assent-core/data/area_codes.tsv

Method, per NPA 200..999:
  * ZONES: union of the zones of every tzdata prefix that starts with "1" + NPA
    (the 4-digit area-code entry plus all longer exchange-level entries), so an
    area code split across zones lists all of them. The country-wide fallback
    entry "1" is NOT used. "Etc/Unknown" is dropped; NPAs with no remaining
    zone are skipped.
  * REGION:
      - NPA owned by a non-US/CA NANP region (metadata leading_digits):
        US territories -> PR, VI, GU, AS, MP; other countries -> "-" + ISO code
        (e.g. -JM, -BS, -DO).
      - otherwise US/Canada: USPS / Canada Post code parsed from the geocoder
        description of the area-code-level prefix "1NPA" (e.g. "Texas" -> TX,
        "Nova Scotia/Prince Edward Island" -> NS,PE); if that prefix has no
        description, the most frequent code among the exchange-level
        descriptions ("Austin, TX" -> TX).
    An area code covering several provinces lists them comma-separated, sorted.
  * CORRECTIONS (tools/area_code_corrections.tsv, one row per error found in
    libphonenumber, each with its source) replace an area code's zones.
  * OVERLAYS (tools/area_code_overlays.tsv, each with its source): an overlay's zones
    become the union of its own and its parents' (corrected) zones, since a number in an
    overlay may be anywhere its parents are.
  A fourth column names the correction or overlay that changed a row.
Diagnostics go to stderr; the TSV goes to stdout.
"""
import datetime
import hashlib
import os
import re
import sys
from collections import Counter

import phonenumbers
from phonenumbers.geodata import GEOCODE_DATA
from phonenumbers.phonenumberutil import PhoneMetadata
from phonenumbers.tzdata import TIMEZONE_DATA

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR",
    "California": "CA", "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID",
    "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE",
    "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ",
    "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT",
    "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "Washington State": "WA", "West Virginia": "WV", "Wisconsin": "WI",
    "Wyoming": "WY", "Washington D.C.": "DC", "District of Columbia": "DC",
}
CA_PROVINCES = {
    "Alberta": "AB", "British Columbia": "BC", "British Colombia": "BC",
    "Manitoba": "MB", "New Brunswick": "NB", "Newfoundland and Labrador": "NL",
    "Newfoundland": "NL", "Nova Scotia": "NS", "Northwest Territories": "NT",
    "Nunavut": "NU", "Ontario": "ON", "Prince Edward Island": "PE",
    "Quebec": "QC", "Saskatchewan": "SK", "Yukon": "YT",
}
NAME_TO_CODE = {**US_STATES, **CA_PROVINCES}
US_CODES = set(US_STATES.values())
CA_CODES = set(CA_PROVINCES.values())
# NANP regions that are US territories: keep their plain postal code.
US_TERRITORIES = {"PR", "VI", "GU", "AS", "MP"}

SUFFIX_RE = re.compile(r",\s*([A-Z]{2})$")


def codes_from_description(desc):
    """Postal codes named by one English geocoder description (may be empty)."""
    m = SUFFIX_RE.search(desc)
    if m:
        return {m.group(1)}
    codes = set()
    for part in desc.split("/"):
        code = NAME_TO_CODE.get(part.strip())
        if code:
            codes.add(code)
    return codes


def other_region_for_npa(npa):
    """ISO region code of a non-US/CA NANP member owning this NPA, else None."""
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        md = PhoneMetadata.metadata_for_region(region)
        if md is None or md.leading_digits is None:
            continue
        if re.match(md.leading_digits, npa + "2000000"):
            return region
    return None


def zones_for_npa(npa):
    key = "1" + npa
    zones = set()
    for prefix, tzs in TIMEZONE_DATA.items():
        if prefix.startswith(key):
            zones.update(tzs)
    zones.discard("Etc/Unknown")
    return sorted(zones)


def us_ca_region_for_npa(npa):
    key = "1" + npa
    top = GEOCODE_DATA.get(key, {}).get("en")
    if top:
        codes = codes_from_description(top)
        if codes:
            return sorted(codes), None
    counts = Counter()
    for prefix, desc in GEOCODE_DATA.items():
        if prefix.startswith(key) and len(prefix) > len(key):
            for c in codes_from_description(desc.get("en", "")):
                counts[c] += 1
    if not counts:
        return None, "no geocoder description"
    note = None
    if len(counts) > 1:
        note = "exchange-level codes %s; using most frequent" % dict(counts)
    return [counts.most_common(1)[0][0]], note


HERE = os.path.dirname(os.path.abspath(__file__))


def data_rows(name):
    """(path, sha256, rows) of a tab-separated file beside this script; # starts a comment."""
    path = os.path.join(HERE, name)
    with open(path, "rb") as f:
        raw = f.read()
    rows = [line.split("\t") for line in raw.decode("utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    return name, hashlib.sha256(raw).hexdigest(), rows


def main():
    corrections = data_rows("area_code_corrections.tsv")
    overlays = data_rows("area_code_overlays.tsv")
    rows = []
    n_us = n_ca = 0
    for n in range(200, 1000):
        npa = str(n)
        zones = zones_for_npa(npa)
        if not zones:
            continue
        other = other_region_for_npa(npa)
        if other is not None:
            region = other if other in US_TERRITORIES else "-" + other
        else:
            codes, note = us_ca_region_for_npa(npa)
            if codes is None:
                print("warn: %s: %s; skipped" % (npa, note), file=sys.stderr)
                continue
            if note:
                print("note: %s: %s" % (npa, note), file=sys.stderr)
            if set(codes) <= US_CODES:
                n_us += 1
            elif set(codes) <= CA_CODES:
                n_ca += 1
            else:
                print("warn: %s: mixed US/CA codes %s" % (npa, codes), file=sys.stderr)
            region = ",".join(codes)
        rows.append([npa, region, ",".join(zones), ""])

    by_npa = {r[0]: r for r in rows}
    for npa, zones, _source in corrections[2]:
        row = by_npa[npa]
        row[2] = ",".join(sorted(set(zones.split(","))))
        row[3] = "corrected"
    for npa, parents, _source in overlays[2]:
        row = by_npa[npa]
        union = set(row[2].split(","))
        for p in parents.split(","):
            union.update(by_npa[p][2].split(","))
        union = ",".join(sorted(union))
        if union != row[2]:
            row[2] = union
            row[3] = ("corrected; " if row[3] else "") + "overlay of " + parents

    out = sys.stdout
    out.write("# NANP area code -> region -> IANA time zone(s)\n")
    out.write("# Source: libphonenumber offline data via the PyPI package `phonenumbers` "
              "(Apache-2.0), modules phonenumbers.tzdata / phonenumbers.geodata / metadata\n")
    out.write("# phonenumbers version: %s\n" % phonenumbers.__version__)
    out.write("# Generated: %s\n" % datetime.date.today().isoformat())
    for name, digest, items in (corrections, overlays):
        out.write("# Built with tools/%s (%d rows, sha256 %s)\n" % (name, len(items), digest))
    out.write("# Regenerate: pip install phonenumbers==%s && "
              "python3 tools/gen_area_codes.py > crates/assent-core/data/area_codes.tsv\n"
              % phonenumbers.__version__)
    out.write("# Columns: NPA<TAB>REGION<TAB>ZONES (comma-separated, sorted, de-duplicated)"
              "<TAB>CHANGED (a correction or overlay that changed the row)\n")
    out.write("# REGION: USPS / Canada Post code (several comma-separated when the NPA spans\n")
    out.write("#   provinces, e.g. 867 NT,NU,YT); US territories PR VI GU AS MP; other NANP\n")
    out.write("#   countries '-' + ISO 3166 code (e.g. -JM). ZONES: union over all prefixes 1NPA*.\n")
    out.write("# Counts: %d US, %d Canada, %d other NANP; %d rows\n"
              % (n_us, n_ca, len(rows) - n_us - n_ca, len(rows)))
    for r in rows:
        out.write("\t".join(r).rstrip("\t") + "\n")
    print("rows=%d us=%d ca=%d other=%d" % (len(rows), n_us, n_ca, len(rows) - n_us - n_ca),
          file=sys.stderr)


if __name__ == "__main__":
    main()
