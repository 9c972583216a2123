// Oracle for test/scheduler/cron.test.ts: evaluates cron expressions with the
// real Quartz 2.3.x CronExpression and prints the results as JSON.
//
// Input (stdin), one case per line, tab-separated:
//   F <expression> <time zone> <start ISO-8601 instant> <count>   fire times
//   V <expression>                                                  accept/reject
// Output (stdout): {"quartzVersion": args[0], "fires": [...], "validity": [...]}
//
// Not part of the test suite; see generate.sh.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.TimeZone;
import org.quartz.CronExpression;

public class QuartzOracle {
    private static final DateTimeFormatter ISO =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        List<String> fires = new ArrayList<>();
        List<String> validity = new ArrayList<>();
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty() || line.startsWith("//")) continue;
            String[] p = line.split("\t", -1);
            if (p[0].equals("V")) {
                String expr = p[1];
                String err = null;
                try {
                    new CronExpression(expr);
                } catch (Exception e) {
                    err = e.getMessage() == null ? e.toString() : e.getMessage();
                }
                validity.add("    {\"expression\": " + q(expr) + ", \"valid\": " + (err == null)
                        + (err == null ? "" : ", \"quartzError\": " + q(err)) + "}");
            } else if (p[0].equals("F")) {
                String expr = p[1];
                String zone = p[2];
                Instant from = Instant.parse(p[3]);
                int count = Integer.parseInt(p[4]);
                TimeZone tz = TimeZone.getTimeZone(zone);
                if (!tz.getID().equals(zone)) throw new IllegalArgumentException("unknown zone " + zone);
                CronExpression ce = new CronExpression(expr);
                ce.setTimeZone(tz);
                List<String> out = new ArrayList<>();
                Date d = Date.from(from);
                for (int i = 0; i < count; i++) {
                    d = ce.getNextValidTimeAfter(d);
                    if (d == null) { out.add("null"); break; }
                    out.add(q(ISO.format(d.toInstant())));
                }
                fires.add("    {\"expression\": " + q(expr) + ", \"timeZone\": " + q(zone)
                        + ", \"from\": " + q(ISO.format(from)) + ", \"count\": " + count
                        + ", \"expected\": [" + String.join(", ", out) + "]}");
            } else {
                throw new IllegalArgumentException("bad line: " + line);
            }
        }
        String version = args.length > 0 ? args[0] : CronExpression.class.getPackage().getImplementationVersion();
        StringBuilder sb = new StringBuilder();
        sb.append("{\n  \"generator\": \"test/scheduler/oracle/generate.sh\",\n");
        sb.append("  \"quartzVersion\": ").append(version == null ? "null" : q(version)).append(",\n");
        sb.append("  \"javaVersion\": ").append(q(System.getProperty("java.version"))).append(",\n");
        sb.append("  \"fires\": [\n").append(String.join(",\n", fires)).append("\n  ],\n");
        sb.append("  \"validity\": [\n").append(String.join(",\n", validity)).append("\n  ]\n}\n");
        System.out.print(sb);
    }
}
