#!/bin/sh
# The trainers prmflow's exports are tested against, each in its own directory under .cache/consumers
# (pip --no-deps --target: their pins conflict with ours, and the tests load only the modules they need).
# TRL 1.13.0 is in the venv (the `train` extra). A directory that exists is kept: a rerun is a no-op.
set -e
PY=${PY:-.venv/bin/python}
DIR=${CONSUMERS_DIR:-.cache/consumers}
mkdir -p "$DIR"
install() {  # name, then the pinned requirements
	name=$1; shift
	if [ ! -f "$DIR/$name/.installed" ]; then
		rm -rf "$DIR/$name"
		"$PY" -m pip install -q --no-deps --target "$DIR/$name" "$@"
		touch "$DIR/$name/.installed"
	fi
}
# OpenRLHF 0.9.5: ProcessRewardDataset and PRMLoss, loaded from their files (openrlhf.models imports deepspeed).
install openrlhf "openrlhf==0.9.5" "pylatexenc==2.10"
# verl 0.9.1 and what `import verl` needs that the venv lacks (ray for verl.protocol, tensordict, omegaconf).
install verl "verl==0.9.1" "omegaconf==2.3.0" "antlr4-python3-runtime==4.9.3" "tensordict==0.15.3" "pyvers==0.2.3" \
	"ray==2.60.0" "msgpack==1.2.4" "codetiming==1.4.0"
# peft for train-prm's optional LoRA (tests/prm/test_lora.py); its dependencies are prmflow's own.
install peft "peft==0.22.0"
# TRL's Math-Shepherd converter is a repository script, not in the wheel: the exact file at the tag.
if [ ! -f "$DIR/trl-v1.13.0/math_shepherd.py" ]; then
	mkdir -p "$DIR/trl-v1.13.0"
	"$PY" -c "import sys, urllib.request; open(sys.argv[2], 'wb').write(urllib.request.urlopen(sys.argv[1], timeout=60).read())" \
		https://raw.githubusercontent.com/huggingface/trl/v1.13.0/examples/datasets/math_shepherd.py \
		"$DIR/trl-v1.13.0/math_shepherd.py" 2>/dev/null \
		|| { rm -f "$DIR/trl-v1.13.0/math_shepherd.py"; echo "install_consumers: raw.githubusercontent.com unreachable; the Math-Shepherd converter test will skip"; }
fi
