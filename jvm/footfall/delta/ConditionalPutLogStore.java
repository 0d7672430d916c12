/*
 * Footfall's Delta log store for S3: two drivers may commit to the same table.
 *
 * Delta commits version N of a table by creating _delta_log/N.json, and a second writer
 * that tries to create the same file must fail, so that it re-reads the log and retries
 * at N+1. Delta's own S3 log store only guarantees that within one driver JVM; across
 * drivers it needs io.delta:delta-storage-s3-dynamodb (not served to this project, see
 * docs/decisions.md). S3 now has put-if-absent (If-None-Match: *), and the S3A connector
 * of Hadoop 3.5 exposes it as the createFile() option
 * "fs.option.create.conditional.overwrite": this store writes every new log file that
 * way, so S3 itself decides which of two writers made version N.
 *
 * Switched on for s3a:// by jobs/spark.py (spark.delta.logStore.s3a.impl).
 */
package footfall.delta;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Iterator;

import io.delta.storage.HadoopFileSystemLogStore;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FSDataOutputStreamBuilder;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.s3a.RemoteFileChangedException;

public class ConditionalPutLogStore extends HadoopFileSystemLogStore {

    /** The S3A createFile() option for a put that fails when the object exists. */
    static final String CONDITIONAL_CREATE = "fs.option.create.conditional.overwrite";

    public ConditionalPutLogStore(Configuration initHadoopConf) {
        super(initHadoopConf);
    }

    /**
     * Write the actions as the log file at path. Without overwrite the file is created
     * only if absent, atomically on the store: a lost race (or a file already there)
     * raises java.nio.file.FileAlreadyExistsException, the signal Delta retries on.
     */
    @Override
    public void write(Path path, Iterator<String> actions, Boolean overwrite,
                      Configuration hadoopConf) throws IOException {
        byte[] body = join(actions);
        FileSystem fs = path.getFileSystem(hadoopConf);
        if (overwrite) {
            try (FSDataOutputStream out = fs.create(path, true)) {
                out.write(body);
            }
            return;
        }
        try {
            // must(): a store that cannot honour the condition fails here, loudly.
            FSDataOutputStreamBuilder<?, ?> create = fs.createFile(path);
            create.overwrite(false);
            create.must(CONDITIONAL_CREATE, true);
            try (FSDataOutputStream out = create.build()) {
                out.write(body);
            }
        } catch (org.apache.hadoop.fs.FileAlreadyExistsException | RemoteFileChangedException e) {
            // An S3A retry of our own put after a lost response also ends in 412; the
            // commit is ours then, and reporting a conflict would make Delta commit it twice.
            if (sameContent(fs, path, body)) {
                return;
            }
            java.nio.file.FileAlreadyExistsException conflict =
                new java.nio.file.FileAlreadyExistsException(path.toString());
            conflict.initCause(e);
            throw conflict;
        }
    }

    /** A log file is written by one put: readers never see part of it. */
    @Override
    public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
        return false;
    }

    private static byte[] join(Iterator<String> actions) {
        StringBuilder text = new StringBuilder();
        while (actions.hasNext()) {
            text.append(actions.next()).append('\n');
        }
        return text.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static boolean sameContent(FileSystem fs, Path path, byte[] body) throws IOException {
        ByteArrayOutputStream found = new ByteArrayOutputStream(body.length);
        try (InputStream in = fs.open(path)) {
            in.transferTo(found);
        } catch (java.io.FileNotFoundException gone) {
            return false;
        }
        return Arrays.equals(found.toByteArray(), body);
    }
}
