"""``roharness geometry``: solar geometry at a point near Mars."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("geometry", help="solar zenith angle, LTST, Ls and subsolar point",
                       description="Solar geometry at (UTC, areocentric lat, east lon, alt) "
                       "from SPICE (DE440, IAU Mars rotation).")
    p.add_argument("--utc", required=True, help="UTC time, e.g. 2022-07-19T19:58:45")
    p.add_argument("--lat", type=float, required=True, help="areocentric latitude [deg]")
    p.add_argument("--lon", type=float, required=True, help="east longitude [deg]")
    p.add_argument("--alt-km", type=float, default=0.0,
                   help="altitude above the 3389.5 km sphere [km] (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import math

    from retrieval import geometry, spice
    from retrieval.constants import MARS_MEAN_RADIUS_M
    from retrieval.errors import RoharnessError

    r_km = MARS_MEAN_RADIUS_M / 1e3
    if not (math.isfinite(args.alt_km) and -r_km < args.alt_km <= 1e6):
        raise RoharnessError(f"altitude {args.alt_km:g} km is not a point near Mars; expected "
                             f"a finite altitude above the centre (> -{r_km:g} km) and at "
                             "most 1e6 km")
    et = spice.utc_to_et(args.utc)
    g = geometry.solar_geometry(et, args.lat, args.lon, args.alt_km * 1e3)
    out = {k: float(v) for k, v in g.items()}
    if args.json:
        from validation.cli import print_json
        print_json(out)
    else:
        print(f"UTC {args.utc}  lat {args.lat:.3f} deg  lon {args.lon:.3f} deg E  "
              f"alt {args.alt_km:.1f} km")
        print(f"  solar zenith angle   {out['sza_deg']:9.4f} deg")
        print(f"  local true solar time{out['ltst_hours']:9.4f} h")
        print(f"  Ls                   {out['ls_deg']:9.4f} deg")
        print(f"  subsolar point       {out['subsolar_lat_deg']:9.4f} deg N, "
              f"{out['subsolar_lon_deg']:.4f} deg E")
    return 0
