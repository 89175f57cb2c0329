package dev.riffle.nexmark;

/** A Nexmark auction (a Flink POJO). */
public class Auction {
    public long id;
    public String itemName;
    public String description;
    public long initialBid;
    public long reserve;
    /** Event time, Unix milliseconds. */
    public long dateTime;
    /** Unix milliseconds. */
    public long expires;
    public long seller;
    public long category;
    public String extra;

    public Auction() {}
}
