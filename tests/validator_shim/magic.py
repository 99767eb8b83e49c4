"""Stand-in for python-magic where Debian's libmagic1 is not installed.

iiif-validator 1.0.5 imports `magic` for its format_jp2 and format_pdf tests
only, which are broken in the validator itself and never run here (our own
tests cover jp2 and pdf). Without libmagic, importing the real package fails
and takes every other validator test with it; this module lets them load.
"""


class Magic:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("libmagic is not installed: the jp2/pdf validator tests cannot run")
