"""The ``shop`` scenario: shoppers' sessions walking a funnel, as the design notes' events.

The e-commerce notes (Flink and Pinot) read four event types sharing base fields:
``page_view``, ``product_view``, ``add_to_cart`` and ``purchase``. This model makes whole
sessions of them. It is pure like every live model (:mod:`rankstream.generator.live`):
batch ``index`` draws from a generator seeded with ``(spec.seed, SHOP_STREAM, index)``, so
the same call gives the same events and bytes. The model:

- *Users*: ``users`` shoppers (returning ones: Zipf(``user_zipf``) over them), each with
  one device (``device_type``, ``os``, ``browser``) and one ``location`` (a city, with its
  country code as ``region``) for good.
- *Catalogue*: ``products`` products, each in one of :data:`PRODUCT_CATEGORIES`, with a name
  and a price in whole cents (log-normal around ``median_price``, ending in .99, .95, .49
  or .00); popularity Zipf(``product_zipf``).
- *A session*: a landing ``page_view`` (from a search engine, social network or a
  newsletter); with probability ``browse_share`` one or more ``product_view`` (geometric,
  mean ``1 / product_stop``), each sometimes after a category ``page_view``; each product
  viewed for the first time is put in the cart (``add_to_cart``, quantity 1 to 3) with
  probability ``cart_share``; a session with a cart checks out with probability
  ``checkout_share``: a ``page_view`` of the checkout, then one ``purchase`` per product in
  the cart, all under one ``order_id``. So per session, purchases <= carts <= product views,
  and every purchased product was carted, every carted one viewed, earlier.
- *Time*: a batch carries whole sessions (the last one cut to fit ``size``: a prefix of a
  session keeps the funnel's order). Each session ends within the ``jitter_ms`` before
  ``now_ms``; its events lie before that end, one think time apart (exponential, mean
  ``think_s``), like an app that uploads a session's events when it ends. So events reach the
  server up to a session's length (minutes) after they happened.

Prices are exact: ``price`` and ``total_amount`` are whole cents divided by 100, so their
JSON has at most two decimals (``19.99``) and ``round(price * 100)`` gives the cents back.
Events carry no malformed, late or duplicate rows (the ``views`` scenario exercises those).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Self

import msgspec
import numpy as np
import numpy.typing as npt

from rankstream.errors import require
from rankstream.generator.live import ScenarioBatch
from rankstream.generator.sampling import cdf, draw, zipf_weights
from rankstream.generator.traffic import SECOND, diurnal_multiplier

SHOP_STREAM: Final = 0x5409
"""Mixed into every seed of this model, so its draws never repeat another scenario's."""

SITE: Final = "https://shop.rankstream.test"
FUNNEL: Final = ("page_view", "product_view", "add_to_cart", "purchase")
"""The event types, in funnel order."""

PRODUCT_CATEGORIES: Final = {
    "electronics": ("Headphones", "Charger", "Smartwatch", "Speaker", "Keyboard"),
    "fashion": ("Sneakers", "Jacket", "T-Shirt", "Backpack", "Sunglasses"),
    "home": ("Lamp", "Cushion", "Blender", "Kettle", "Rug"),
    "beauty": ("Face Cream", "Shampoo", "Perfume", "Lip Balm", "Serum"),
    "sports": ("Yoga Mat", "Water Bottle", "Dumbbells", "Running Belt", "Tennis Balls"),
    "books": ("Novel", "Cookbook", "Travel Guide", "Comic", "Notebook"),
    "toys": ("Puzzle", "Building Set", "Plush Bear", "Board Game", "Kite"),
    "grocery": ("Coffee Beans", "Green Tea", "Olive Oil", "Dark Chocolate", "Granola"),
}
"""Product categories with the nouns their product names are made from."""
_ADJECTIVES: Final = (
    "Classic", "Premium", "Eco", "Compact", "Deluxe", "Ultra", "Smart", "Vintage",
    "Organic", "Pro", "Mini", "Essential",
)  # fmt: skip
_DEVICES: Final = (("mobile", 0.6), ("desktop", 0.32), ("tablet", 0.08))
"""Device types and their shares of users."""
_SYSTEMS: Final = {
    "mobile": (("Android", 0.55), ("iOS", 0.45)),
    "desktop": (("Windows", 0.7), ("macOS", 0.25), ("Linux", 0.05)),
    "tablet": (("iPadOS", 0.6), ("Android", 0.4)),
}
"""Operating systems of each device type, with their shares."""
_BROWSERS: Final = {
    "Android": ("Chrome", "Samsung Internet"),
    "iOS": ("Safari", "Chrome"),
    "Windows": ("Chrome", "Edge", "Firefox"),
    "macOS": ("Safari", "Chrome"),
    "Linux": ("Firefox", "Chrome"),
    "iPadOS": ("Safari",),
}
_CITIES: Final = (
    ("New York", "US"), ("Los Angeles", "US"), ("Chicago", "US"), ("London", "GB"),
    ("Berlin", "DE"), ("Paris", "FR"), ("Madrid", "ES"), ("Toronto", "CA"), ("Sydney", "AU"),
    ("Tokyo", "JP"), ("Seoul", "KR"), ("Mumbai", "IN"), ("Sao Paulo", "BR"),
    ("Mexico City", "MX"), ("Amsterdam", "NL"), ("Warsaw", "PL"),
)  # fmt: skip
_REFERRERS: Final = (
    "https://www.google.com/", "https://www.bing.com/", "https://www.facebook.com/",
    "https://www.instagram.com/", "https://mail.rankstream.test/newsletter",
)  # fmt: skip
_LANDINGS: Final = ("/", "/deals", "/search", "/new-arrivals")
_QUANTITIES: Final = (1, 1, 1, 1, 2, 3)
_PRICE_ENDINGS: Final = (1, 1, 1, 5, 51, 100)
"""Cents taken off a whole-dollar price: .99 mostly, then .95, .49 and .00."""


class ShopEvent(msgspec.Struct, tag_field="event_type", kw_only=True, gc=False):
    """The notes' base fields, shared by every shop event (``event_type`` is the tag)."""

    event_id: str
    timestamp: int
    user_id: str
    session_id: str
    device_type: str
    os: str
    browser: str
    location: str
    region: str


class PageView(ShopEvent, tag="page_view", kw_only=True, gc=False):
    page_url: str
    referrer_url: str
    time_spent: float
    """Seconds on the page (millisecond precision)."""


class ProductView(ShopEvent, tag="product_view", kw_only=True, gc=False):
    product_id: str
    product_name: str
    product_category: str
    price: float
    """Whole cents / 100: at most two decimals."""


class AddToCart(ProductView, tag="add_to_cart", kw_only=True, gc=False):
    quantity: int


class Purchase(AddToCart, tag="purchase", kw_only=True, gc=False):
    total_amount: float
    """``price * quantity``, computed in whole cents."""
    order_id: str


@dataclass(frozen=True, slots=True)
class ShopSpec:
    """What shop traffic to make; see the module docstring."""

    users: int = 50_000
    user_zipf: float = 0.7
    products: int = 2_000
    product_zipf: float = 1.0
    median_price: float = 25.0
    browse_share: float = 0.75
    product_stop: float = 0.4
    category_page_share: float = 0.4
    cart_share: float = 0.3
    checkout_share: float = 0.5
    think_s: float = 15.0
    jitter_ms: int = 1 * SECOND
    seed: int = 7
    run: str = ""
    """Prefix of every ``event_id`` (the sender gives each run its own)."""

    def validate(self) -> None:
        """Raise :class:`~rankstream.errors.ConfigError` naming the first bad setting."""
        shares = (self.browse_share, self.category_page_share, self.cart_share)
        checks = [
            (self.users >= 1 and self.products >= 1, "users and products must be >= 1"),
            (self.seed >= 0, "seed must be >= 0"),
            (self.user_zipf >= 0 and self.product_zipf >= 0, "skews must be >= 0"),
            (self.median_price >= 1, "median_price must be >= 1"),
            (all(0 <= s <= 1 for s in (*shares, self.checkout_share)), "shares must be 0 to 1"),
            (0 < self.product_stop <= 1, "product_stop must be in (0, 1]"),
            (self.think_s > 0 and self.jitter_ms >= 1, "need think_s > 0, jitter_ms >= 1"),
        ]
        require(checks, "shop spec")


def _uuid(rng: np.random.Generator) -> str:
    """A random (version 4) UUID drawn from ``rng``: reproducible for a seed."""
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


class ShopModel:
    """Makes the shop sessions of ``spec`` (see the module docstring). Building it draws the
    users and the catalogue (about a second for 50,000 users); after that every method is
    pure."""

    def __init__(self, spec: ShopSpec, start_ms: int = 0) -> None:
        spec.validate()
        self.spec = spec
        self.start_ms = start_ms
        rng = np.random.default_rng((spec.seed, SHOP_STREAM, 0))
        self.user_ids: list[str] = [_uuid(rng) for _ in range(spec.users)]
        self._user_cdf = cdf(zipf_weights(spec.users, spec.user_zipf))
        self._devices = [self._device(rng) for _ in range(spec.users)]
        cities = draw(cdf(zipf_weights(len(_CITIES), 0.8)), spec.users, rng).tolist()
        self._cities = [_CITIES[c] for c in cities]
        names = list(PRODUCT_CATEGORIES)
        numbers = rng.permutation(spec.products) + 100_000
        self.product_ids: list[str] = [f"SKU-{n}" for n in numbers.tolist()]
        """Product ``i``'s id; ``i`` is also its popularity rank (0: most viewed)."""
        categories = rng.integers(0, len(names), spec.products).tolist()
        self.product_categories: list[str] = [names[c] for c in categories]
        self.product_names: list[str] = [
            f"{_ADJECTIVES[int(rng.integers(len(_ADJECTIVES)))]} "
            f"{PRODUCT_CATEGORIES[c][int(rng.integers(len(PRODUCT_CATEGORIES[c])))]}"
            for c in self.product_categories
        ]
        dollars = np.maximum(
            1, np.rint(spec.median_price * np.exp(rng.normal(0, 0.9, spec.products)))
        )
        endings = np.array(_PRICE_ENDINGS)[rng.integers(0, len(_PRICE_ENDINGS), spec.products)]
        self.price_cents: npt.NDArray[np.int64] = (dollars * 100 - endings).astype(np.int64)
        """Product -> its price in whole cents (at least 49)."""
        self._product_cdf = cdf(zipf_weights(spec.products, spec.product_zipf))

    @staticmethod
    def _device(rng: np.random.Generator) -> tuple[str, str, str]:
        """One user's ``(device_type, os, browser)``."""
        device = _pick(_DEVICES, rng)
        system = _pick(_SYSTEMS[device], rng)
        browsers = _BROWSERS[system]
        return device, system, browsers[int(rng.integers(len(browsers)))]

    def starting_at(self, start_ms: int) -> Self:
        """The same model for a run starting at ``start_ms`` (nothing depends on it)."""
        moved = copy.copy(self)
        moved.start_ms = start_ms
        return moved

    def rate_multiplier(self, now_ms: int) -> float:
        """The diurnal rate factor (:func:`~rankstream.generator.traffic.diurnal_multiplier`)."""
        return diurnal_multiplier(now_ms)

    def price(self, product: int) -> float:
        """Product ``product``'s price as it goes on the wire (cents / 100)."""
        return int(self.price_cents[product]) / 100

    def batch(self, index: int, size: int, now_ms: int) -> ScenarioBatch:
        """Batch ``index`` (``>= 0``) of ``size`` events of whole sessions, made at wall
        time ``now_ms`` (the last session cut to fit).

        Pure. Event ids are ``{spec.run}{index:x}-{row:x}``; the Kafka key is the
        ``user_id``. Within a session events are in time order; sessions follow one another
        in the batch, so the batch as a whole is not in time order.
        """
        if index < 0 or size < 0:
            raise ValueError("index and size must be >= 0")
        rng = np.random.default_rng((self.spec.seed, SHOP_STREAM, index + 1))
        events: list[ShopEvent] = []
        ids = (f"{self.spec.run}{index:x}-{row:x}" for row in range(size))
        while len(events) < size:
            events.extend(self._session(rng, now_ms, size - len(events), ids))
        return ScenarioBatch(index, now_ms, [*events], [e.user_id for e in events])

    def _session(
        self, rng: np.random.Generator, now_ms: int, room: int, ids: Iterator[str]
    ) -> list[ShopEvent]:
        """One session's events (its first ``room``), ending within the jitter before
        ``now_ms``, with the next event ids from ``ids``."""
        spec = self.spec
        user = int(draw(self._user_cdf, 1, rng)[0])
        device, system, browser = self._devices[user]
        city, country = self._cities[user]
        base = {
            "user_id": self.user_ids[user],
            "session_id": _uuid(rng),
            "device_type": device,
            "os": system,
            "browser": browser,
            "location": f"{city}, {country}",
            "region": country,
        }
        steps: list[tuple[str, str, int]] = [  # (event type, page path, product)
            ("page_view", _LANDINGS[int(rng.integers(len(_LANDINGS)))], -1)
        ]
        cart: dict[int, int] = {}  # product -> quantity, in the order carted
        if rng.random() < spec.browse_share:
            viewed = draw(self._product_cdf, int(rng.geometric(spec.product_stop)), rng)
            for product in viewed.tolist():
                if rng.random() < spec.category_page_share:
                    path = f"/category/{self.product_categories[product]}"
                    steps.append(("page_view", path, -1))
                steps.append(("product_view", "", product))
                if product not in cart and rng.random() < spec.cart_share:
                    cart[product] = int(rng.choice(_QUANTITIES))
                    steps.append(("add_to_cart", "", product))
        order_id = ""
        if cart and rng.random() < spec.checkout_share:
            order_id = _uuid(rng)
            steps.append(("page_view", "/checkout", -1))
            steps.extend(("purchase", "", product) for product in cart)
        steps = steps[:room]
        gaps = np.maximum(500, rng.exponential(spec.think_s * 1000, len(steps))).astype(np.int64)
        end = now_ms - int(rng.integers(0, spec.jitter_ms))
        # The last event at `end`, each one before it a gap earlier: gaps[i + 1] after event i.
        times = (end - np.cumsum(gaps[::-1])[::-1] + gaps).tolist()
        referrer = _REFERRERS[int(rng.integers(len(_REFERRERS)))]
        out: list[ShopEvent] = []
        for i, (kind, path, product) in enumerate(steps):
            head: dict[str, Any] = {"event_id": next(ids), "timestamp": times[i], **base}
            if kind == "page_view":
                url = f"{SITE}{path}"
                spent = int(gaps[i + 1] if i + 1 < len(steps) else gaps[0]) / 1000
                out.append(PageView(**head, page_url=url, referrer_url=referrer, time_spent=spent))
                referrer = url
                continue
            head.update(
                product_id=self.product_ids[product],
                product_name=self.product_names[product],
                product_category=self.product_categories[product],
                price=self.price(product),
            )
            if kind == "product_view":
                out.append(ProductView(**head))
            elif kind == "add_to_cart":
                out.append(AddToCart(**head, quantity=cart[product]))
            else:
                quantity = cart[product]
                total = int(self.price_cents[product]) * quantity / 100
                out.append(
                    Purchase(**head, quantity=quantity, total_amount=total, order_id=order_id)
                )
        return out


def _pick(choices: tuple[tuple[str, float], ...], rng: np.random.Generator) -> str:
    """One name of ``choices`` (``(name, share)``, shares summing to 1), drawn by share."""
    u = rng.random()
    for name, share in choices:
        if u < share:
            return name
        u -= share
    return choices[-1][0]
