package dev.riffle.nexmark;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

/**
 * The Nexmark event generator of the Flink side, written to the same
 * rules as riffle's sources/nexmark (see its doc.go): every event is a pure
 * function of the seed and its event number; of every 50 event numbers the
 * first is a person, the next 3 auctions, the other 46 bids; every number
 * field is drawn from a SplitMix64 hash of (seed, event number, field) with
 * the same arithmetic as the Go generator, so ids, prices, times,
 * categories, sellers, bidders and person names, cities and states equal
 * riffle's for the same seed. Random strings (extra, item names,
 * descriptions, e-mail addresses, urls) are substrings of pools drawn from
 * a Java random stream, so their bytes differ from riffle's while their
 * lengths follow the same distributions.
 */
public final class Gen implements Serializable {
    private static final long serialVersionUID = 1L;

    static final int PERSON_PROPORTION = 1;
    static final int AUCTION_PROPORTION = 3;
    static final int BID_PROPORTION = 46;
    static final int TOTAL_PROPORTION = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;
    static final long FIRST_PERSON_ID = 1000;
    static final long FIRST_AUCTION_ID = 1000;
    static final long FIRST_CATEGORY_ID = 10;
    static final long NUM_CATEGORIES = 5;
    static final long HOT_BLOCK = 100;
    static final long ID_LEAD = 10;
    static final long HOT_CHANNELS_RATIO = 2;
    static final int NUM_CHANNELS = 10_000;
    /** 2025-01-01T00:00:00Z, riffle's default base time. */
    static final long BASE_TIME = 1735689600000L;

    static final long HOT_AUCTION_RATIO = 2;
    static final long HOT_SELLERS_RATIO = 4;
    static final long HOT_BIDDERS_RATIO = 4;
    static final int AVG_PERSON_BYTES = 200;
    static final int AVG_AUCTION_BYTES = 500;
    static final int AVG_BID_BYTES = 100;
    static final long NUM_IN_FLIGHT_AUCTIONS = 100;
    static final long NUM_ACTIVE_PEOPLE = 1000;

    private static final String[] FIRST = {"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"};
    private static final String[] LAST = {"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"};
    private static final String[] CITIES = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"};
    private static final String[] STATES = {"AZ", "CA", "ID", "OR", "WA", "WY"};
    private static final String[] HOT_CHANNELS = {"Google", "Facebook", "Baidu", "Apple"};

    private static final int EXTRA_POOL = 256 << 10;
    private static final int TEXT_POOL = 64 << 10;
    private static final long MASK32 = 0xffffffffL;
    private static final long GOLDEN = 0x9e3779b97f4a7c15L;
    private static final long DRAW_MUL = 0xd1b54a32d192ed03L;

    private final long seed;
    private final long rate;
    private final long key;
    private final long auctionEvents;
    private final int bidExtraMin;
    private final int bidExtraDelta;

    // Built on first use in the task (not serialized).
    private transient byte[] extraPool;
    private transient byte[] textPool;
    private transient String[] names;
    private transient String[] hotUrls;
    private transient String[] channelNames;
    private transient String[] channelUrls;
    private transient double[] pow10Table;

    /** A generator for the seed at rate events per second of event time. */
    public Gen(long seed, long rate) {
        this.seed = seed;
        this.rate = rate;
        this.key = mix64(seed ^ 0x6e65786d61726b31L);
        this.auctionEvents = NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION / AUCTION_PROPORTION;
        int d = Math.max(AVG_BID_BYTES - 4 * 8, 0);
        int delta = (int) Math.floor(d * 0.2 + 0.5);
        this.bidExtraMin = d - delta;
        this.bidExtraDelta = 2 * delta;
    }

    static long mix64(long z) {
        z ^= z >>> 30;
        z *= 0xbf58476d1ce4e5b9L;
        z ^= z >>> 27;
        z *= 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    private long draw(long n, long k) {
        return mix64(key + n * GOLDEN + k * DRAW_MUL);
    }

    /** Maps 32 random bits to [0, n). */
    private static long below(long r32, long n) {
        return ((r32 & MASK32) * n) >>> 32;
    }

    private static boolean hot(long h, long ratio) {
        return ((h & MASK32) * ratio) >>> 32 > 0;
    }

    /** The event time of event number n, Unix milliseconds. */
    public long eventTime(long n) {
        return BASE_TIME + n * 1000 / rate;
    }

    /** The event number of the i-th event of a table (persons 0, auctions 1, bids 2). */
    public static long eventNumber(int table, long i) {
        switch (table) {
            case 0:
                return i * TOTAL_PROPORTION;
            case 1:
                return i / AUCTION_PROPORTION * TOTAL_PROPORTION + PERSON_PROPORTION + i % AUCTION_PROPORTION;
            default:
                return i / BID_PROPORTION * TOTAL_PROPORTION + PERSON_PROPORTION + AUCTION_PROPORTION + i % BID_PROPORTION;
        }
    }

    /** How many events of a table the event numbers [0, events) hold. */
    public static long count(int table, long events) {
        long epochs = events / TOTAL_PROPORTION;
        long rest = events % TOTAL_PROPORTION;
        switch (table) {
            case 0:
                return epochs * PERSON_PROPORTION + Math.min(rest, PERSON_PROPORTION);
            case 1:
                return epochs * AUCTION_PROPORTION + Math.max(0, Math.min(rest - PERSON_PROPORTION, AUCTION_PROPORTION));
            default:
                return epochs * BID_PROPORTION + Math.max(0, rest - PERSON_PROPORTION - AUCTION_PROPORTION);
        }
    }

    static long lastAuction(long n) {
        long epoch = n / TOTAL_PROPORTION, off = n % TOTAL_PROPORTION;
        if (off < PERSON_PROPORTION) {
            epoch--;
            off = AUCTION_PROPORTION - 1;
        } else if (off >= PERSON_PROPORTION + AUCTION_PROPORTION) {
            off = AUCTION_PROPORTION - 1;
        } else {
            off -= PERSON_PROPORTION;
        }
        return epoch * AUCTION_PROPORTION + off;
    }

    static long lastPerson(long n) {
        long epoch = n / TOTAL_PROPORTION, off = n % TOTAL_PROPORTION;
        if (off >= PERSON_PROPORTION) {
            off = PERSON_PROPORTION - 1;
        }
        return epoch * PERSON_PROPORTION + off;
    }

    private long person(long n, long h, long ratio, long hotOffset) {
        if (hot(h, ratio)) {
            return lastPerson(n) / HOT_BLOCK * HOT_BLOCK + hotOffset + FIRST_PERSON_ID;
        }
        long num = lastPerson(n) + 1;
        long active = Math.min(num, NUM_ACTIVE_PEOPLE);
        return num - active + below(h >>> 32, active + ID_LEAD) + FIRST_PERSON_ID;
    }

    private long coldAuction(long n, long r) {
        long last = lastAuction(n);
        long lo = Math.max(last - NUM_IN_FLIGHT_AUCTIONS, 0);
        return lo + below(r, last - lo + 1 + ID_LEAD);
    }

    private void init() {
        if (extraPool != null) {
            return;
        }
        SplittableRandom rng = new SplittableRandom(key ^ 0x7461626c6573L);
        byte[] ep = new byte[EXTRA_POOL];
        for (int i = 0; i < ep.length; i++) {
            ep[i] = (byte) ('a' + rng.nextInt(26));
        }
        byte[] tp = new byte[TEXT_POOL];
        for (int i = 0; i < tp.length; i++) {
            tp[i] = rng.nextInt(13) != 0 ? (byte) ('a' + rng.nextInt(26)) : (byte) ' ';
        }
        String[] hu = new String[HOT_CHANNELS.length];
        for (int i = 0; i < hu.length; i++) {
            hu[i] = baseUrl(rng);
        }
        String[] cn = new String[NUM_CHANNELS];
        String[] cu = new String[NUM_CHANNELS];
        for (int n = 0; n < NUM_CHANNELS; n++) {
            cn[n] = "channel-" + n;
            String u = baseUrl(rng);
            if (rng.nextInt(10) > 0) {
                u += "&channel_id=" + Math.abs(Integer.reverse(n));
            }
            cu[n] = u;
        }
        String[] nm = new String[FIRST.length * LAST.length];
        int k = 0;
        for (String f : FIRST) {
            for (String l : LAST) {
                nm[k++] = f + " " + l;
            }
        }
        double[] pt = new double[6 * 256 + 1];
        for (int j = 0; j < pt.length; j++) {
            pt[j] = Math.pow(10, j / 256.0);
        }
        textPool = tp;
        hotUrls = hu;
        channelNames = cn;
        channelUrls = cu;
        names = nm;
        pow10Table = pt;
        extraPool = ep;
    }

    private static String word(SplittableRandom rng) {
        char[] b = new char[3 + rng.nextInt(2)];
        for (int i = 0; i < b.length; i++) {
            b[i] = rng.nextInt(13) != 0 ? (char) ('a' + rng.nextInt(26)) : '_';
        }
        return new String(b);
    }

    private static String baseUrl(SplittableRandom rng) {
        return "https://www.nexmark.com/" + word(rng) + "/" + word(rng) + "/" + word(rng) + "/item.htm?query=1";
    }

    /** Beam's price distribution: round(10^(6u)·100) cents, u uniform in [0, 1). */
    private long price(long h) {
        double u = (h >>> 11) * 0x1p-53;
        double t = 6 * u * 256;
        int j = (int) t;
        double f = (t - j) * (Math.log(10) / 256);
        double p = 1 + f * (1 + f * (1.0 / 2 + f * (1.0 / 6 + f * (1.0 / 24 + f * (1.0 / 120)))));
        return (long) (pow10Table[j] * p * 100 + 0.5);
    }

    private static String latin1(byte[] pool, int off, int len) {
        return new String(pool, off, len, StandardCharsets.ISO_8859_1);
    }

    /** Beam's nextString(maxLen): 3 to maxLen-1 letters and spaces, trimmed. */
    private String text(long h, int maxLen) {
        int l = 3 + (int) (((h & MASK32) * (maxLen - 3)) >>> 32);
        int off = (int) (((h >>> 32) * (TEXT_POOL - maxLen)) >>> 32);
        while (l > 0 && textPool[off] == ' ') {
            off++;
            l--;
        }
        while (l > 0 && textPool[off + l - 1] == ' ') {
            l--;
        }
        return latin1(textPool, off, l);
    }

    private String extra(long h, int cur, int avg) {
        if (cur > avg) {
            return "";
        }
        int d = avg - cur;
        int delta = (int) Math.floor(d * 0.2 + 0.5);
        int l = d - delta;
        if (delta > 0) {
            l += (int) (((h & MASK32) * (2L * delta)) >>> 32);
        }
        int off = (int) (((h >>> 32) * (EXTRA_POOL - l)) >>> 32);
        return latin1(extraPool, off, l);
    }

    /** Fills b with the bid of event number e. */
    public Bid bid(long e, Bid b) {
        init();
        b.dateTime = eventTime(e);
        long h = draw(e, 1);
        if (hot(h, HOT_AUCTION_RATIO)) {
            b.auction = lastAuction(e) / HOT_BLOCK * HOT_BLOCK + FIRST_AUCTION_ID;
        } else {
            b.auction = coldAuction(e, h >>> 32) + FIRST_AUCTION_ID;
        }
        b.bidder = person(e, draw(e, 2), HOT_BIDDERS_RATIO, 1);
        b.price = price(draw(e, 3));
        h = draw(e, 4);
        if (hot(h, HOT_CHANNELS_RATIO)) {
            int c = (int) (((h >>> 32) * HOT_CHANNELS.length) >>> 32);
            b.channel = HOT_CHANNELS[c];
            b.url = hotUrls[c];
        } else {
            int c = (int) (((h >>> 32) * NUM_CHANNELS) >>> 32);
            b.channel = channelNames[c];
            b.url = channelUrls[c];
        }
        h = draw(e, 5);
        int l = bidExtraMin + (int) (((h & MASK32) * bidExtraDelta) >>> 32);
        long range = EXTRA_POOL - bidExtraMin - bidExtraDelta;
        b.extra = latin1(extraPool, (int) (((h >>> 32) * range) >>> 32), l);
        return b;
    }

    /** Fills a with the auction of event number e. */
    public Auction auction(long e, Auction a) {
        init();
        long ts = eventTime(e);
        a.dateTime = ts;
        a.id = lastAuction(e) + FIRST_AUCTION_ID;
        a.seller = person(e, draw(e, 1), HOT_SELLERS_RATIO, 0);
        a.category = FIRST_CATEGORY_ID + below(draw(e, 2), NUM_CATEGORIES);
        a.initialBid = price(draw(e, 3));
        a.reserve = a.initialBid + price(draw(e, 4));
        long horizon = eventTime(e + auctionEvents) - ts;
        a.expires = ts + 1 + Long.remainderUnsigned(draw(e, 8), Math.max(2 * horizon, 1));
        a.itemName = text(draw(e, 5), 20);
        a.description = text(draw(e, 6), 100);
        int cur = 8 + a.itemName.length() + a.description.length() + 5 * 8;
        a.extra = extra(draw(e, 7), cur, AVG_AUCTION_BYTES);
        return a;
    }

    /** Fills p with the person of event number e. */
    public Person person(long e, Person p) {
        init();
        p.dateTime = eventTime(e);
        p.id = lastPerson(e) + FIRST_PERSON_ID;
        long h = draw(e, 1);
        p.name = names[(int) below(h, names.length)];
        p.city = CITIES[(int) below(h >>> 32, CITIES.length)];
        h = draw(e, 2);
        p.state = STATES[(int) below(h, STATES.length)];
        p.emailAddress = text(draw(e, 3), 7) + "@" + text(draw(e, 4), 5) + ".com";
        h = draw(e, 5);
        char[] cc = new char[19];
        for (int k = 0; k < 4; k++) {
            long v = (((h >>> (16 * k)) & 0xffff) * 10000) >>> 16;
            cc[5 * k] = (char) ('0' + v / 1000);
            cc[5 * k + 1] = (char) ('0' + v / 100 % 10);
            cc[5 * k + 2] = (char) ('0' + v / 10 % 10);
            cc[5 * k + 3] = (char) ('0' + v % 10);
            if (k < 3) {
                cc[5 * k + 4] = ' ';
            }
        }
        p.creditCard = new String(cc);
        int cur = 8 + p.name.length() + p.emailAddress.length() + 19 + p.city.length() + p.state.length();
        p.extra = extra(draw(e, 6), cur, AVG_PERSON_BYTES);
        return p;
    }

    public long seed() {
        return seed;
    }
}
