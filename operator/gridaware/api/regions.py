"""The catalog of grid regions that gridaware knows by name.

A region is what users see (``us-west``); a grid zone is what carbon feeds key on
(``US-CAL-CISO``, Electricity Maps' codes); a price zone is what day-ahead markets key on
(often the same code). The lab names member clusters after regions, and the synthetic signal
model uses the profile hints here, so the catalog lives in ``api`` where every layer can read it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Region(BaseModel):
    """A named grid region with the zone codes its feeds use."""

    model_config = ConfigDict(frozen=True)

    name: str
    grid_zone: str
    price_zone: str | None
    description: str
    timezone_offset_hours: float
    synthetic_only: bool = False


REGIONS: dict[str, Region] = {
    r.name: r
    for r in (
        Region(
            name="us-west",
            grid_zone="US-CAL-CISO",
            price_zone="US-CAL-CISO",
            description="California (CAISO): strong midday solar",
            timezone_offset_hours=-8,
        ),
        Region(
            name="us-east",
            grid_zone="US-MIDA-PJM",
            price_zone="US-MIDA-PJM",
            description="PJM: gas, coal and nuclear",
            timezone_offset_hours=-5,
        ),
        Region(
            name="us-texas",
            grid_zone="US-TEX-ERCO",
            price_zone="US-TEX-ERCO",
            description="ERCOT: wind at night, solar by day",
            timezone_offset_hours=-6,
        ),
        Region(
            name="us-northeast",
            grid_zone="US-NY-NYIS",
            price_zone="US-NY-NYIS",
            description="New York ISO",
            timezone_offset_hours=-5,
        ),
        Region(
            name="ca-central",
            grid_zone="CA-ON",
            price_zone="CA-ON",
            description="Ontario: hydro and nuclear",
            timezone_offset_hours=-5,
        ),
        Region(
            name="eu-central",
            grid_zone="DE-LU",
            price_zone="DE-LU",
            description="Germany/Luxembourg: wind, solar and coal",
            timezone_offset_hours=1,
        ),
        Region(
            name="uk-south",
            grid_zone="GB",
            price_zone=None,
            description="Great Britain: wind and gas",
            timezone_offset_hours=0,
        ),
        Region(
            name="eu-north",
            grid_zone="SE-SE3",
            price_zone="SE-SE3",
            description="Sweden SE3: hydro and nuclear",
            timezone_offset_hours=1,
        ),
        Region(
            name="eu-west",
            grid_zone="FR",
            price_zone="FR",
            description="France: nuclear",
            timezone_offset_hours=1,
        ),
        Region(
            name="sa-east",
            grid_zone="BR-SP",
            price_zone="BR-SP",
            description="Brazil south-east: hydro",
            timezone_offset_hours=-3,
        ),
        Region(
            name="ap-northeast",
            grid_zone="JP-TK",
            price_zone="JP-TK",
            description="Tokyo",
            timezone_offset_hours=9,
        ),
        Region(
            name="ap-northeast-2",
            grid_zone="KR",
            price_zone="KR",
            description="South Korea",
            timezone_offset_hours=9,
        ),
        Region(
            name="ap-southeast",
            grid_zone="SG",
            price_zone="SG",
            description="Singapore: gas",
            timezone_offset_hours=8,
        ),
        Region(
            name="ap-south",
            grid_zone="IN-WE",
            price_zone="IN-WE",
            description="India west",
            timezone_offset_hours=5.5,
        ),
        Region(
            name="au-east",
            grid_zone="AU-NSW",
            price_zone="AU-NSW",
            description="New South Wales",
            timezone_offset_hours=10,
        ),
        Region(
            name="au-southeast",
            grid_zone="AU-VIC",
            price_zone="AU-VIC",
            description="Victoria",
            timezone_offset_hours=10,
        ),
        Region(
            name="sa-west",
            grid_zone="CL-SIC",
            price_zone="CL-SIC",
            description="Chile SIC: solar",
            timezone_offset_hours=-4,
        ),
        Region(
            name="af-south",
            grid_zone="ZA",
            price_zone="ZA",
            description="South Africa: coal",
            timezone_offset_hours=2,
        ),
        Region(
            name="cn-northwest",
            grid_zone="CN-NX",
            price_zone=None,
            description="Ningxia (synthetic profile: solar-heavy)",
            timezone_offset_hours=8,
            synthetic_only=True,
        ),
        Region(
            name="cn-north",
            grid_zone="CN-IM",
            price_zone=None,
            description="Inner Mongolia (synthetic profile: wind-heavy)",
            timezone_offset_hours=8,
            synthetic_only=True,
        ),
        Region(
            name="cn-east",
            grid_zone="CN-AH",
            price_zone=None,
            description="Anhui (synthetic profile: coal-heavy)",
            timezone_offset_hours=8,
            synthetic_only=True,
        ),
    )
}

DEFAULT_LAB_REGIONS: tuple[str, ...] = ("us-west", "eu-central", "us-east")


class UnknownRegionError(ValueError):
    """A region name that is not in the catalog."""


def lookup(name: str) -> Region:
    """Return the catalog entry for ``name`` or raise with the list of known names."""
    try:
        return REGIONS[name]
    except KeyError:
        known = ", ".join(sorted(REGIONS))
        raise UnknownRegionError(f"unknown region '{name}'; known regions: {known}") from None
