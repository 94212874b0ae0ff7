package dev.kiln.ir;

import dev.kiln.ops.Op;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The attention ops' attributes survive the text encoding that graph files and kernel caches use. */
class OpCodecAttentionTest {

    @Test
    void kernelLevelAttentionRoundTrips() {
        Op op = new Op.Attention(true, -3, 0.125, 30.0, true, true, 256, true);
        String text = OpCodec.encode(op);
        assertEquals("Attention(causal=true, causalOffset=-3, scale=0.125, softcap=30.0, enableGqa=true, hasMask=true,"
                + " partitionSize=256, transposedOutput=true)", text);
        assertEquals(op, OpCodec.decode(text));
    }

    @Test
    void sdpaRoundTrips() {
        Op op = new Op.ScaledDotProductAttention(true, 0.1, false, false);
        assertEquals(op, OpCodec.decode(OpCodec.encode(op)));
    }
}
