package dev.kiln.opt.npu;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.MethodModel;
import java.lang.classfile.attribute.CodeAttribute;
import java.lang.classfile.instruction.InvokeInstruction;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The command processor's launch loop stays a small method that reaches every kernel through
 * a {@code Step} call. With the kernels' entry code in the loop itself, C2 compiled it in 300
 * to 500 ms, again after each deoptimisation, and on two cores the W4 block ran at half speed
 * meanwhile (see {@code NpuExecutable.Step}).
 */
class LaunchLoopShapeTest {
    @Test
    void theLaunchLoopCallsStepsAndNoKernel() throws IOException {
        ClassModel model;
        try (InputStream in = NpuExecutable.class.getResourceAsStream("NpuExecutable.class")) {
            model = ClassFile.of().parse(in.readAllBytes());
        }
        List<MethodModel> loops = model.methods().stream()
                .filter(m -> m.methodName().equalsString("run") && m.methodType().stringValue().startsWith("(Ldev/kiln/opt/npu/NpuExecutable$Instance;"))
                .toList();
        assertEquals(1, loops.size(), "the launch loop, run(Instance, ...)");
        CodeAttribute code = loops.getFirst().findAttribute(java.lang.classfile.Attributes.code()).orElseThrow();
        assertTrue(code.codeLength() <= 600, "the launch loop is " + code.codeLength() + " bytes of bytecode");
        boolean callsStep = false;
        for (var element : code) {
            if (!(element instanceof InvokeInstruction call)) continue;
            String owner = call.owner().asInternalName();
            callsStep |= owner.equals("dev/kiln/opt/npu/NpuExecutable$Step") && call.name().equalsString("run");
            assertTrue(!owner.startsWith("dev/kiln/npu/") && !owner.equals("dev/kiln/ops/Dispatch"),
                    "the launch loop calls " + owner + "." + call.name().stringValue() + " itself");
        }
        assertTrue(callsStep, "the launch loop runs its launches through Step.run");
    }
}
