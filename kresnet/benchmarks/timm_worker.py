"""timm's training step for `kresnet bench model --vs timm`, runnable with any Python that has torch and timm.

It imports neither Keras nor kresnet, so a separate environment can run it as a file:

    /path/to/venv-with-timm/bin/python kresnet/benchmarks/timm_worker.py --rounds 4   # JSON of step times
    ... --serve   # one step per "train"/"infer" line on stdin, answers "done"; kresnet times it in turns

The step matches kresnet's benchmark: channels_last float32 images, forward, cross-entropy,
backward and an SGD Nesterov update (learning rate 0.01, momentum 0.9).
"""

import argparse
import json
import statistics
import sys
import time


def build_steps(model_name, batch, size, num_classes):
    """(train_step, infer_step) callables of timm's `model_name` on fixed random data."""
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False, num_classes=num_classes).to(memory_format=torch.channels_last)
    images = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, num_classes, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        return float(loss)  # waits for the step, as kresnet's train_on_batch returns a host value

    def infer_step():
        model.eval()
        with torch.no_grad():
            return model(images).numpy()

    return train_step, infer_step


def serve(train_step, infer_step, warmup):
    """Answer "train"/"infer" lines on stdin with one step each, so another process can time them in its rounds."""
    for _ in range(warmup):
        train_step()
        infer_step()
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        {"train": train_step, "infer": infer_step}[command]()
        print("done", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50d", help="timm model name")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4, help="timed training steps when not serving")
    parser.add_argument("--serve", action="store_true", help="step on stdin commands instead of timing itself")
    args = parser.parse_args(argv)
    train_step, infer_step = build_steps(args.model, args.batch, args.size, args.num_classes)
    if args.serve:
        serve(train_step, infer_step, args.warmup)
        return
    for _ in range(args.warmup):
        train_step()
    seconds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        train_step()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({
        "model": f"timm {args.model}", "batch": args.batch, "size": args.size, "train_step_seconds": seconds,
        "best_images_per_s": args.batch / min(seconds), "median_images_per_s": args.batch / statistics.median(seconds),
    }))


if __name__ == "__main__":
    main()
