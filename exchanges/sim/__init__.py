"""Protocol-faithful local exchange simulator for MEXC Spot v3 and Gate.io Spot v4.

One aiohttp server per venue speaks the real REST paths, parameter names, response shapes,
status codes, error codes/labels, signatures and WebSocket channels of ``PROTOCOLS.md``
(MEXC data frames as binary protobuf). Market data is replayed from an arbsim catalog
(default: the bundled ``data/sample``) into the simulator's own books; orders are matched by
:class:`exchanges.simulated.matching.MatchingEngine` against those books.

Start one in a test::

    from exchanges.sim import SimConfig, VenueConfig, run_simulator

    cfg = SimConfig(venues=[VenueConfig(venue="mexc"), VenueConfig(venue="gateio")], speed=0)
    async with run_simulator(cfg) as sim:
        mexc = sim.venues["mexc"]      # .base_url .api_url .ws_url .api_key .api_secret
        sim.step(10)                   # speed 0: market data moves only when stepped
        sim.clock.offset_ns            # exchange time = catalog time + this (see 1a)
        mexc.inject_fault(FaultRule(kind="skip_seq", count=2))
        mexc.exchange.inject_trade("BTC/USDT", Side.SELL, price, qty)   # fills resting orders

Admin API on every venue server (not part of any venue): ``GET/POST/DELETE /_sim/faults``,
``POST /_sim/step?n=N``, ``POST /_sim/trade``, ``GET /_sim/state``.

Where the simulator differs from the real venues
------------------------------------------------
Market data and matching (both venues)

1. Market data is a catalog replay on one clock for all venues (``exchanges/sim/clock.py``):
   the window's ``start`` (``--start``; default: when every book is first complete) is
   released at host time ``origin`` and every message at ``origin + (ts - start) / speed``
   with ``ts`` its ``ts_exchange``, so the catalog's inter-venue timing is kept. With
   ``pace: local`` (``--pace local``) the book and the matching still move at
   ``ts_exchange`` but the wire carries each message at its recorded ``ts_local`` (the
   catalog's feed latency); pushes that show book state (best bid/ask, partial depth, the
   ``spot.obu`` full book) then show the book as the wire has carried it, REST the
   venue's current book. Books are built silently up to ``start``; nothing at or after
   ``--end`` is replayed; with ``loop`` lap ``k`` replays the window ``k × lap_ns`` later and
   opens with one full-book diff per symbol (deleting stale levels) back to the book of
   ``start``.
1a. Exchange times. Every time the simulator emits (pushed and REST market-data times,
   order create/update, fill and trade times, server time, Gate ``X-In-Time``/
   ``X-Out-Time`` and envelope times) is on one exchange clock ``exchange = catalog +
   offset``, ``offset = origin - start`` a whole number of milliseconds: a market-data time
   is exactly ``ts_exchange // 1 ms + offset_ms + lap × lap_ns / 1 ms``. The clock reads
   ``origin + speed × (host_now - origin)``: the host clock at speed 1 (to 0.5 ms), ``speed``
   times as fast otherwise; at speed 0 (stepping) it is the host clock and only
   market-data times follow the catalog. ``GET /_sim/state`` reports ``clock``: offset,
   origin, speed, pace, window, lap length and the venue's lap. An order handled at
   exchange time T meets the book of every message due by T (messages a few ms overdue are
   applied first; a replay further behind schedule is not waited for); fills a market
   message causes carry that message's time.
2. Update ids are the simulator's own: one id per level change (at least one per message),
   starting at the catalog's first ``seq``. A catalog snapshot is sent as a diff with
   explicit deletions. Real ids advance by other amounts.
3. Depth pushes are one frame per catalog message: no 10 ms / 100 ms aggregation (both
   intervals of a topic get the same frames); best bid/ask and partial-depth channels push
   on every depth update, trades one per frame.
4. Own orders never appear in the public book or trades and own fills do not change public
   market data. A taker fill hides the quantity it took from that level (per account) until
   market data changes the level; accounts do not see each other's consumption and cannot
   trade with each other.
5. Resting orders get the shared matching engine's queue position (``risk_averse``: the
   displayed size at their price when they arrive is ahead of them and only trades
   advance it); they fill as maker, at their price, from trades once the queue is gone or
   when the book or a trade goes through their price. ``inject_trade`` trades only against
   own resting orders.
6. Fees are charged in the asset received (base for a buy, quote for a sell) on both
   venues, as the venue's rules say (``exchanges/mexc/rules.py``,
   ``exchanges/gateio/rules.py``); MX / GT point deductions are not modelled.
   Buy limits lock ``price × qty`` (plus the fee when it is paid in quote); balance checks
   use the worst of maker/taker fee.
7. A market buy sized in quote (MEXC ``quoteOrderQty``, Gate market-buy ``amount``; also
   MEXC market sells with ``quoteOrderQty``) is converted to a base quantity by walking
   the displayed levels, rounded down to the lot; an empty book answers below-minimum.
8. Tick and lot must be powers of ten (both venues express precision as a decimal count);
   other catalog instruments are refused at start.
9. Order ids are numeric strings from a venue-wide counter (MEXC's real ids look like
   ``C02__...``); trade ids likewise. State is in memory only.
10. Server time is the exchange clock (1a); no skew or drift against it is simulated.
    Request timestamps are accepted against the exchange clock or the host clock (they
    differ at speeds other than 1).
11. Rate limits enforced: the rows of the venue's rate-limit table that count order
    requests (the same rows as the replay venue and the live client): MEXC order + cancel
    per API key (429, ``Retry-After``); Gate place per key and market, cancel per key (429
    ``TOO_MANY_REQUESTS``). Not enforced: the rows only the client counts (IP and UID
    weights, Gate public and other private budgets), 418 bans, MEXC 403 WAF, WebSocket
    message or subscription limits, connection lifetime or idle disconnects.
12. The order of authentication checks is a choice (MEXC: key, signature, recvWindow,
    timestamp; Gate: headers, key, timestamp, signature); the venues do not document theirs.

MEXC

13. Not served: ``batchOrders``, ``order/all``, ``historicalTrades``, ``klines``,
    ``tradeFee``, ``capital/*`` but the wallet endpoints of 30 (``config/getall``,
    ``withdraw``, ``withdraw/apply``, ``withdraw`` DELETE, ``withdraw/history``,
    ``deposit/hisrec``, ``deposit/address``), other account endpoints,
    futures (``/api/v1/contract/*``: ccxt's market loading asks for them unless its
    ``fetch_swap_markets`` is turned off) (aiohttp's plain-text 404). Served from the
    replay: ``ticker/24hr`` (the trades replayed in the last day of exchange time, counted
    in whole minutes, of the warm-up before the window only the last 1000; ``openTime`` =
    ``closeTime`` − 24 h, ``prevClosePrice`` = ``openPrice``, ``priceChangePercent`` a
    fraction cut to 4 places, ``count`` null),
    ``ticker/price`` (the last replayed trade; before any trade the mid rounded down to
    the tick; ``symbols`` is ignored, as recorded from the venue), ``avgPrice`` (``mins``
    5: volume-weighted over the trades of the last 5 whole minutes, else the last price),
    ``aggTrades`` (one per trade, ``a``/``f``/``l`` null, ``T`` cut to the second, as
    recorded), ``capital/config/getall`` (the served assets and those of the transfer routes; a
    ``networkList`` entry per route, see 30).
14. Every rejection is HTTP 400 (errors.py decision). Unverified codes: ``-1102`` missing
    parameter, ``-1100`` malformed parameter, ``-1111`` precision, ``-2010`` post-only
    would take and duplicate open ``newClientOrderId``, ``700001`` missing API-key header.
    A FOK that cannot fill ends CANCELED (no error).
15. exchangeInfo: ``status`` always ``"1"``, ``isSpotTradingAllowed`` always true, fixed
    ``maxQuoteAmount``/``maxQuoteAmountMarket``, empty ``filters``, ``fullName`` = base.
16. ``account``: commissions and ``updateTime`` are null; zero balances are omitted.
    ``trades``: ``id`` null, ``isBestMatch`` true. ``clientOrderId`` is null when none was
    sent. ``myTrades.commissionAsset`` follows 6.
17. WebSocket: a multi-topic subscription is acknowledged by one reply whose ``msg`` lists
    the accepted topics comma-separated; a valid ``.pb`` pattern with an unknown symbol, a
    non-``.pb`` topic and a private topic on a connection without ``listenKey`` all get the
    "Blocked!" refusal; unparsable requests answer ``msg: "Wrong format"``. Only text
    control frames are read.
18. Listen keys: valid 60 min, extended by PUT; checked only when a connection opens (an
    expiring key does not close live connections; DELETE does). No limits on keys per UID or
    connections per key. ``GET userDataStream`` lists the caller's keys.
19. Private pushes: ``PrivateAccountV3Api.type`` values (``ENTRUST``, ``CONTRACT``,
    ``ENTRUST_UNFROZEN``) and ``coinId`` (= asset name) are guesses; balance changes of an
    order's immediate fills are reported with its first (NEW) order push.

Gate.io

20. Not served: amend (``PATCH /spot/orders/{id}``), ``price_orders``, ``tickers``,
    ``candlesticks``, ``unified/*``, ``wallet/*`` but the wallet endpoints of 30,
    ``withdrawals/push``, ``margin/*`` but
    ``margin/currency_pairs`` (answers ``[]``: no pair is open to margin trading here;
    client libraries ask at start), ``spot/currencies`` is served with ``chains`` empty and
    deposits and withdrawals disabled; WebSocket
    ``spot.order_amend``, ``spot.order_book`` (snapshot channel), ``spot.tickers``,
    ``spot.candlesticks``; no ``event: upgrade``.
21. currency_pairs: ``fee`` is the instrument's taker fee in percent (the simulator charges
    the catalog's maker and taker rates); ``max_*`` fixed; ``trade_status`` always
    ``tradable``.
22. ``account`` ``spot`` and ``unified`` both trade the spot balances; ``iceberg``,
    ``stp_act``, ``action_mode`` are ignored (full responses). A market order without
    ``time_in_force`` defaults to ``ioc``.
23. A FOK that cannot fill is the error ``FOK_NOT_FILL``; a crossing post-only is the error
    ``POC_FILL_IMMEDIATELY`` (never ``finish_as=poc``); an unknown order is 400
    ``ORDER_NOT_FOUND``; cancelling a finished order answers ``ORDER_CLOSED`` /
    ``ORDER_CANCELLED``. ``MISSING_REQUIRED_PARAM``, ``INVALID_PARAM_VALUE``,
    ``INVALID_REQUEST_BODY`` texts are the simulator's.
24. The client ``text`` id resolves for the whole run (real: 30 min to 1 h after the order
    ends). Orders list ignores ``from``/``to``; ``page``/``limit`` are honoured.
25. Rate-limit headers only on order placement; ``X-In-Time``/``X-Out-Time`` on every REST
    answer. ``Timestamp`` is accepted within ±60 s.
26. ``spot.obu``: one ``full`` push at subscription, then the same diffs as
    ``spot.order_book_update`` (not trimmed to the top 50/400 levels, so deep levels
    persist in a client's book). ``spot.book_ticker`` pushes on every depth update.
27. WebSocket API: ``spot.order_place`` always sends its ``ack`` before the result (also
    when the order is then rejected); ``client_id``/``conn_id``/``trace_id`` are
    placeholders. Login accepts a signature over ``""`` or ``"{}"`` when no
    ``req_param`` is sent. ``spot.balances`` ``change_type`` values are guesses.
28. Private channel auth failures answer error code 4 "auth failed" regardless of cause.

Faults (``FaultRule``)

29. ``timeout`` holds a request ``delay_s`` then answers 504; ``http_status`` answers a
    plain-text body; ``lose_ack`` processes an accepted order and then aborts the TCP
    connection (``status`` 0) or answers ``status``; ``skip_seq``/``duplicate``/
    ``reorder``/``garbage`` act on depth channels only (``garbage`` sends, before the
    update, a copy of it whose first price is the text ``garbage``: a frame a client can
    decode but must not apply); ``pause`` holds the venue's replay (no gap, no frames)
    while the shared clock goes on: on resume the held messages go out at once, with their
    own times; ``drop_ws`` aborts every WebSocket TCP connection; ``slow`` answers a
    processed request ``delay_s`` late; ``lose_ws_reply`` processes a Gate WebSocket API
    request and sends no reply. ``GET /_sim/ledger`` (an admin route, not a venue API)
    returns each account's orders, fills, balances, withdrawals and deposits as the
    simulator keeps them; ``GET /_sim/requests`` counts the venue requests received per
    method and path.

Transfers (both venues; ``exchanges/sim/transfers.py``)

30. Served: MEXC ``POST capital/withdraw`` (``netWork``) and ``capital/withdraw/apply``
    (``network``) -> ``{"id"}``, ``DELETE capital/withdraw?id=``, ``GET
    capital/withdraw/history``, ``capital/deposit/hisrec``, ``capital/deposit/address``,
    ``capital/config/getall``; Gate ``POST /withdrawals``, ``DELETE
    /withdrawals/{id}``, ``GET /wallet/withdrawals``, ``/wallet/deposits``,
    ``/wallet/deposit_address``, ``/wallet/withdraw_status``, ``/wallet/currency_chains``
    (public; ``decimal`` is the number of decimal places of the route's step, so a step
    that is not a power of ten is not told exactly). Not served: MEXC deposit
    address generation (``POST capital/deposit/address``), internal transfers, withdraw
    address lists; Gate ``withdrawals/push``, ``wallet/transfers``, sub-accounts, saved
    addresses; ``spot/currencies`` still shows no chains.
31. One transfer network per simulator: the ``transfers`` routes of the config (asset,
    network, fee, minimum, step, ``send_s``, delay fixed / uniform / lognormal drawn from
    one generator seeded by ``transfer_seed``) hold on every venue, under the same network
    name on both (the real venues name chains differently). Every account has one deposit
    address per route (``sim<network><32 hex>``, a digest; no memo); an account's own
    address is refused as a destination.
32. A withdrawal's ``amount`` includes the fee (as on both venues): ``amount`` is held at
    once, debited when it leaves (``send_s`` later), ``amount - fee`` is credited at the
    destination after the delay; in between the funds are in neither account. ``amount``
    must be at least ``minimum`` and above the fee (else below-minimum: MEXC ``30002``
    (⚠ unverified for withdrawals), Gate ``AMOUNT_TOO_LITTLE``), on the route's ``step``
    (precision: MEXC ``-1111``, Gate ``INVALID_PRECISION``, both unverified), covered by
    the free balance (MEXC ``10101``, Gate ``BALANCE_NOT_ENOUGH``); an unknown coin or
    network is MEXC ``10232`` / Gate ``INVALID_CURRENCY``. No daily or per-withdrawal
    maximum, no address whitelist, memo or KYC checks; ``withdrawMax`` and Gate's limits
    are fixed texts. A client id (``withdrawOrderId``, ``withdraw_order_id``) is used once
    per account: a second use is the bad-parameter rejection (the venues' answer is not
    documented). Gate requires ``chain``; MEXC uses the coin's first route without
    ``netWork`` / ``network``.
33. Statuses: MEXC withdrawals 1 APPLY (held) -> 6 WAIT_CONFIRM (sent) -> 7 SUCCESS, 9
    CANCEL; deposits 4 PENDING -> 5 SUCCESS. Gate withdrawals REQUEST -> EXTPEND -> DONE,
    CANCEL; deposits PEND -> DONE. The other statuses (review, packaging, manual,
    failures) never occur. Only a held withdrawal can be cancelled (MEXC ``-2011``, Gate
    ``INVALID_WITHDRAW_CANCEL_STATUS`` otherwise; an unknown id MEXC ``-2013``, Gate
    ``INVALID_WITHDRAW_ID``: the MEXC codes are the simulator's).
34. A withdrawal to an address no simulated account owns leaves the source and ends
    SUCCESS / DONE after the delay without arriving anywhere (an external wallet).
35. Answers: numbers and times as strings as recorded (MEXC ``status``, ``applyTime``;
    ``coin`` as ``COIN-NETWORK`` in both histories, a ``coin`` filter in either
    spelling); MEXC withdrawal ids are numeric strings (real: 32 hex digits) and its
    history carries ``withdrawOrderId`` (real examples do not show it); Gate ids are
    ``w<n>`` / ``d<n>``, ``POST /withdrawals`` answers 200 with ``fee_amount``;
    ``withdraw_amount_mini`` (one per currency on Gate) is the largest of the currency's
    route minimums, percentage fees are 0. Default time windows: MEXC 90 days, Gate 7
    days (``withdraw_id`` ignores it). Confirmations are not counted.
36. State moves lazily on the exchange clock: every request (admin routes too) first
    applies the steps due; no private push reports transfer balance changes. Wallet
    endpoints are not rate limited by the simulator (the client still counts MEXC's
    weights); ``lose_ack`` acts on the two withdrawal POSTs as on new orders, the other
    REST faults on every wallet route.
"""

from __future__ import annotations

from exchanges.sim.config import AccountConfig, FaultRule, SimConfig, VenueConfig, load_config
from exchanges.sim.runner import Simulator, SimVenue, run_simulator

__all__ = [
    "AccountConfig",
    "FaultRule",
    "SimConfig",
    "SimVenue",
    "Simulator",
    "VenueConfig",
    "load_config",
    "run_simulator",
]
