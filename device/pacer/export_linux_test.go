package pacer

const timerfdExpected = true
