# Track F baselines: train each configured estimator, evaluate it on the test set.


rule train_estimator:
    input:
        train=get_dataset("train"),
        val=get_dataset("val"),
        grid="data/grid/instrument.h5",
    output:
        "models/{estimator}.pkl",
    params:
        p=get_train_params,
    log:
        "logs/train_estimator/{estimator}.log",
    threads: 2
    shell:
        "python -m pfslogg train --rule {rule} --params {params.p:q} --threads {threads} "
        "--train {input.train} --val {input.val} --grid {input.grid} --out {output} > {log} 2>&1"


rule evaluate_estimator:
    # R2, MAE, RMSE overall and per SNR bin, with bootstrap intervals
    input:
        model="models/{estimator}.pkl",
        test=get_dataset("test"),
    output:
        metrics="results/track_f/{estimator}.json",
        predictions="results/track_f/{estimator}_predictions.csv",
    params:
        p=get_eval_params,
    log:
        "logs/evaluate_estimator/{estimator}.log",
    shell:
        "python -m pfslogg evaluate --rule {rule} --params {params.p:q} --model {input.model} "
        "--test {input.test} --out {output.metrics} --predictions {output.predictions} > {log} 2>&1"
