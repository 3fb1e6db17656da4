import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import org.apache.rocketmq.tools.command.MQAdminStartup;

/**
 * Runs Apache RocketMQ's own mqadmin commands in one JVM (a JVM start per command would cost seconds each): one
 * command per line on stdin, its arguments separated by tabs. Before each command's output it prints "### " and the
 * line; errors mqadmin prints (stack traces) go to stdout too, so each command's section holds all it printed. The
 * interop test (mqadmin_test.go) runs the same commands against tide and Apache RocketMQ and compares the outcomes.
 */
public class Admin {
    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        System.setOut(out);
        System.setErr(out);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isBlank()) {
                continue;
            }
            out.println("### " + line.replace('\t', ' '));
            MQAdminStartup.main0(line.split("\t"), null);
            out.flush();
        }
        out.println("### end");
        System.exit(0); // the admin clients' threads are not all daemons
    }
}
