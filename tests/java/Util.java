import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.protocol.Errors;

/**
 * Shared helpers of the Java test programs (tests/java_client.rs): a small
 * JSON writer, argument parsing, named checks that print OK/FAIL lines, and
 * error descriptions that name the Kafka error code.
 */
final class Util {
    private Util() {}

    /** How long one Admin future may take before the check fails. */
    static final long CALL_SECONDS = 15;

    /** An Admin client with bounded timeouts (a hanging call fails the check, not the run). */
    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "sluice-test-java-admin");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        return Admin.create(p);
    }

    static <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(CALL_SECONDS, TimeUnit.SECONDS);
    }

    /** The exception a future or call failed with, without the wrappers. */
    static Throwable unwrap(Throwable t) {
        while ((t instanceof ExecutionException || t instanceof CompletionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    /** "ExceptionClass: message [error N NAME]" (the code for Kafka API errors). */
    static String describe(Throwable t) {
        t = unwrap(t);
        StringBuilder sb = new StringBuilder(t.getClass().getName()).append(": ").append(t.getMessage());
        if (t instanceof ApiException) {
            Errors e = Errors.forException(t);
            sb.append(" [error ").append(e.code()).append(' ').append(e.name()).append(']');
        }
        Throwable c = t.getCause();
        if (c != null && c != t) {
            sb.append(" (caused by ").append(c.getClass().getName()).append(": ").append(c.getMessage()).append(')');
        }
        return sb.toString();
    }

    /** Fails the current check with `msg` unless `cond`. */
    static void expect(boolean cond, String msg) {
        if (!cond) {
            throw new CheckFailed(msg);
        }
    }

    static <T> void expectEq(T want, T got, String what) {
        if (want == null ? got != null : !want.equals(got)) {
            throw new CheckFailed(what + ": expected " + want + ", got " + got);
        }
    }

    /** Runs `call`, which must fail with an exception of class `want` (after unwrapping). */
    static String expectError(Class<? extends Throwable> want, ThrowingSupplier<?> call) {
        Object got;
        try {
            got = call.get();
        } catch (Throwable t) {
            Throwable u = unwrap(t);
            // UnsupportedVersionException extends InvalidConfigurationException: an
            // API the broker lacks must not pass for the error it should have returned.
            boolean unsupported = u instanceof UnsupportedVersionException && want != UnsupportedVersionException.class;
            if (want.isInstance(u) && !unsupported) {
                return "got " + describe(u);
            }
            throw new CheckFailed("expected " + want.getName() + ", got " + describe(u));
        }
        throw new CheckFailed("expected " + want.getName() + ", but the call succeeded (" + got + ")");
    }

    static final class CheckFailed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        CheckFailed(String msg) {
            super(msg);
        }
    }

    @FunctionalInterface
    interface ThrowingSupplier<T> {
        T get() throws Exception;
    }

    /**
     * Named checks: each prints "OK   name: detail" or "FAIL name: why" on
     * stdout at once, so a run shows every failing call, not only the first.
     */
    static final class Checks {
        private final List<String> failed = new ArrayList<>();
        private int ok;

        /** Runs one check; true if it passed. `body` returns a detail for the OK line. */
        boolean check(String name, ThrowingSupplier<?> body) {
            try {
                Object detail = body.get();
                ok++;
                System.out.println("OK   " + name + (detail == null ? "" : ": " + detail));
                System.out.flush();
                return true;
            } catch (Throwable t) {
                String why = t instanceof CheckFailed ? t.getMessage() : describe(t);
                failed.add(name);
                System.out.println("FAIL " + name + ": " + why);
                System.out.flush();
                return false;
            }
        }

        void skip(String name, String why) {
            failed.add(name);
            System.out.println("FAIL " + name + ": not run, " + why);
            System.out.flush();
        }

        /** Prints the summary line and exits: 0 if every check passed, 1 otherwise. */
        void finish() {
            System.out.println("RESULT ok=" + ok + " failed=" + failed.size() + (failed.isEmpty() ? "" : " " + failed));
            System.out.flush();
            System.exit(failed.isEmpty() ? 0 : 1);
        }
    }

    // ---------------------------------------------------------------- arguments

    /** Positional arguments and repeated `--name value` options. */
    static final class Args {
        final List<String> positional = new ArrayList<>();
        final Map<String, List<String>> options = new LinkedHashMap<>();

        Args(String[] argv) {
            for (int i = 0; i < argv.length; i++) {
                if (argv[i].startsWith("--")) {
                    if (i + 1 >= argv.length) {
                        throw new IllegalArgumentException("option " + argv[i] + " needs a value");
                    }
                    options.computeIfAbsent(argv[i].substring(2), k -> new ArrayList<>()).add(argv[++i]);
                } else {
                    positional.add(argv[i]);
                }
            }
        }

        String pos(int i, String name) {
            if (i >= positional.size()) {
                throw new IllegalArgumentException("missing argument " + name);
            }
            return positional.get(i);
        }

        String opt(String name, String dflt) {
            List<String> v = options.get(name);
            return v == null ? dflt : v.get(v.size() - 1);
        }

        long optLong(String name, long dflt) {
            return Long.parseLong(opt(name, Long.toString(dflt)));
        }

        List<String> all(String name) {
            return options.getOrDefault(name, List.of());
        }

        /** `--name P:OFFSET` options as partition -> offset. */
        Map<Integer, Long> partitionOffsets(String name) {
            Map<Integer, Long> m = new LinkedHashMap<>();
            for (String s : all(name)) {
                String[] pv = s.split(":", 2);
                m.put(Integer.parseInt(pv[0]), Long.parseLong(pv[1]));
            }
            return m;
        }
    }

    // ---------------------------------------------------------------- JSON

    static String hex(byte[] b) {
        if (b == null) {
            return null;
        }
        StringBuilder sb = new StringBuilder(b.length * 2);
        for (byte x : b) {
            sb.append(Character.forDigit((x >> 4) & 0xf, 16)).append(Character.forDigit(x & 0xf, 16));
        }
        return sb.toString();
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Writes null, Boolean, Number, String, Map (keys as strings), Collection and Object[] as JSON. */
    static void json(StringBuilder sb, Object v) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long || v instanceof Short) {
            sb.append(v);
        } else if (v instanceof Number) {
            double d = ((Number) v).doubleValue();
            sb.append(Double.isFinite(d) ? Double.toString(d) : "null");
        } else if (v instanceof Map) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                str(sb, String.valueOf(e.getKey()));
                sb.append(':');
                json(sb, e.getValue());
            }
            sb.append('}');
        } else if (v instanceof Collection || v instanceof Object[]) {
            Collection<?> c = v instanceof Object[] ? Arrays.asList((Object[]) v) : (Collection<?>) v;
            sb.append('[');
            boolean first = true;
            for (Object x : c) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                json(sb, x);
            }
            sb.append(']');
        } else {
            str(sb, v.toString());
        }
    }

    private static void str(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /** Prints `v` as the program's single JSON result line on stdout. */
    static void emit(Object v) {
        StringBuilder sb = new StringBuilder();
        json(sb, v);
        System.out.println(sb);
        System.out.flush();
    }

    static void log(String msg) {
        System.err.println(msg);
        System.err.flush();
    }
}
